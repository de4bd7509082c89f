"""The storefront widget script, and a demo shop page that shows it working."""

from __future__ import annotations

import hashlib
import html

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from server.errors import ApiError
from server.templating import STATIC_DIR, TEMPLATES

router = APIRouter(tags=["storefront"])
DEMO_PRODUCTS = 12


@router.get("/widget.js", include_in_schema=False)
async def widget() -> Response:
    """Plain JavaScript with no build step; stores cache it for an hour."""
    return FileResponse(
        STATIC_DIR / "widget.js",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/demo", response_class=HTMLResponse, include_in_schema=False)
async def demo_store(request: Request, item: str | None = None) -> Response:
    """A shop's home page, or a product page with ?item=ID, carrying the widget."""
    settings = request.app.state.settings
    if not settings.storefront_demo or not settings.public_api_keys:
        raise ApiError(404, "not_found", "the demo storefront is off (STOREFRONT_DEMO)")
    engine = request.app.state.engine
    product = engine.item(item) if item else None
    if item and product is None:
        raise ApiError(404, "not_found", f"no item {item!r} in the catalog")
    recommender = engine.recommender
    featured = (
        [recommender.catalog.items[i] for i in recommender.bundle.trending[:DEMO_PRODUCTS]]
        if recommender is not None
        else []
    )
    page = TEMPLATES.get_template("storefront.html.j2").render(
        public_key=settings.public_api_keys[0], product=product, featured=featured
    )
    return HTMLResponse(page)


@router.get("/demo/image/{item_id}.svg", include_in_schema=False)
async def demo_image(request: Request, item_id: str) -> Response:
    """A placeholder picture per product, so the demo needs no image host."""
    if not request.app.state.settings.storefront_demo:
        raise ApiError(404, "not_found", "the demo storefront is off (STOREFRONT_DEMO)")
    hue = int(hashlib.blake2b(item_id.encode(), digest_size=2).hexdigest(), 16) % 360
    label = html.escape(item_id[:16])
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160" viewBox="0 0 160 160">'
        f'<rect width="160" height="160" fill="hsl({hue} 60% 80%)"/>'
        f'<text x="80" y="86" font-family="sans-serif" font-size="14" text-anchor="middle">'
        f"{label}</text></svg>"
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

"""Email renderers: an HTML block per recipient and send, and image/link redirects.

The block is rendered from the send's pinned answer (the same products on every
re-open). Its images and links point at /v1/email/slot/{n}, which email clients load
without headers: each such URL carries an HMAC of (visitor, send, slot), so only links
Encore wrote are followed.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from starlette.responses import HTMLResponse, RedirectResponse, Response

from campaigns.content import SYMBOLS
from models.events import MAX_ID_LENGTH
from server.auth import SecretKey
from server.errors import ApiError
from server.schemas import Placement, RecommendationQuery
from server.templating import TEMPLATES
from state import keys

router = APIRouter(tags=["email"])
TEMPLATE_NAMES = {"products"}
Id = Annotated[str, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00-\x1f\x7f{}]+$")]


def slot_signature(secret: str, visitor_id: str, send_id: str, slot: int) -> str:
    message = f"{visitor_id}\x1f{send_id}\x1f{slot}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


@router.get(
    "/v1/email/block",
    response_class=HTMLResponse,
    summary="An HTML block of products (and an offer) for an email",
)
async def block(
    request: Request,
    _: SecretKey,
    visitor_id: Id,
    send_id: Id,
    template: Annotated[str, Query(max_length=32)] = "products",
    limit: Annotated[int, Query(ge=1, le=8)] = 4,
) -> Response:
    if template not in TEMPLATE_NAMES:
        raise ApiError(404, "template_not_found", f"templates: {sorted(TEMPLATE_NAMES)}")
    query = RecommendationQuery(
        visitor_id=visitor_id, placement=Placement.EMAIL, limit=limit, send_id=send_id
    )
    answer = await request.app.state.recommendations.answer(query)
    people = request.app.state.people
    person = await people.evaluate(visitor_id)
    offers = people.offers(person) if person else []
    secret = request.app.state.settings.offer_code_secret
    base = str(request.base_url).rstrip("/")
    items = [_slot_links(item, n, base, secret, visitor_id, send_id)
             for n, item in enumerate(answer["items"], start=1)]  # fmt: skip
    campaigns = request.app.state.campaigns.current
    html = TEMPLATES.get_template(f"{template}.html.j2").render(
        items=items, offer=offers[0] if offers else None,
        currency=SYMBOLS.get(campaigns.currency, ""),
    )  # fmt: skip
    return Response(html, media_type="text/html; charset=utf-8")


@router.get("/v1/email/slot/{n}", summary="Redirect to a send's n-th product image or page")
async def slot(
    request: Request,
    n: Annotated[int, PathParam(ge=1, le=8)],
    visitor_id: Id,
    send_id: Id,
    sig: Annotated[str, Query(min_length=32, max_length=32)],
    target: Annotated[str, Query(pattern="^(image|page)$")] = "image",
) -> Response:
    """No API key: email clients cannot send one. The signature stands in for it."""
    expected = slot_signature(request.app.state.settings.offer_code_secret, visitor_id, send_id, n)
    if not hmac.compare_digest(expected.encode(), sig.encode()):  # bytes: any sig is comparable
        raise ApiError(403, "forbidden", "this link was not issued by Encore")
    stored = await request.app.state.redis.get(
        keys.send_key(send_id, Placement.EMAIL.value, visitor_id)
    )
    if stored is None:
        raise ApiError(404, "send_not_found", "no such send for this visitor")
    items = orjson.loads(stored)["items"]
    if n > len(items):
        raise ApiError(404, "slot_not_found", "the send has fewer products")
    location = items[n - 1].get("image_url" if target == "image" else "url")
    if not location:
        raise ApiError(404, "slot_not_found", f"the product has no {target}")
    return RedirectResponse(location, status_code=302)


def _slot_links(
    item: dict[str, Any], n: int, base: str, secret: str, visitor_id: str, send_id: str
) -> dict[str, Any]:
    params = {"visitor_id": visitor_id, "send_id": send_id,
              "sig": slot_signature(secret, visitor_id, send_id, n)}  # fmt: skip
    link = f"{base}/v1/email/slot/{n}?"
    return {
        **item,
        "title": item.get("title") or item["item_id"],
        "image_src": link + urlencode({**params, "target": "image"}),
        "page_url": link + urlencode({**params, "target": "page"}),
    }

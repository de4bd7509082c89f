"""The retention dashboard: its data as JSON (secret key) and the page that draws it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from server.auth import SecretKey
from server.dashboard import dashboard
from server.responses import JSONResponse
from server.templating import STATIC_DIR, TEMPLATES

router = APIRouter(tags=["dashboard"])
Month = Annotated[
    str | None, Query(pattern=r"^(19[7-9]\d|2\d{3})-(0[1-9]|1[0-2])$", description="YYYY-MM")
]


@router.get("/v1/dashboard", summary="Retention, attribution and experiment figures")
async def dashboard_data(
    request: Request,
    _: SecretKey,
    months: Annotated[int, Query(ge=1, le=36)] = 12,
    end: Month = None,
    active_months: Annotated[int, Query(ge=1, le=24)] = 6,
) -> Response:
    """Monthly customer retention rate (CRR = (E - N) / B x 100, a customer being
    someone who ordered within `active_months`), repeat-purchase rate and AOV; segment
    sizes and lifetime value; impressions, clicks and attributed revenue; experiments
    with 95% intervals and uplift over the holdout; the model being served."""
    state = request.app.state
    body = await dashboard(
        state.redis, state.engine, state.campaigns.current, months, end, active_months
    )
    return JSONResponse(body)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_page() -> Response:
    """The page itself holds no data: it asks for a secret key and reads the API."""
    return HTMLResponse(TEMPLATES.get_template("dashboard.html.j2").render())


@router.get("/dashboard.js", include_in_schema=False)
async def dashboard_script() -> Response:
    return FileResponse(STATIC_DIR / "dashboard.js", media_type="text/javascript")

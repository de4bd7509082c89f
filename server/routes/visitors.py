"""The live profile of a visitor (secret key only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from models.events import MAX_ID_LENGTH
from server.auth import SecretKey
from server.errors import ApiError
from server.responses import JSONResponse

router = APIRouter(tags=["visitors"])

VisitorId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


@router.get("/v1/visitors/{visitor_id}", summary="A visitor's live profile")
async def get_visitor(request: Request, visitor_id: VisitorId, _: SecretKey) -> Response:
    """Orders, lifetime value, AOV, loyalty tier and points, segments, recent items."""
    people = request.app.state.people
    person = await people.evaluate(visitor_id)
    if person is None:
        raise ApiError(404, "visitor_not_found", "no events recorded for this visitor")
    return JSONResponse(people.profile(person))

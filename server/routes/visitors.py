"""The live profile of a visitor, what is held about them, and erasure (secret key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from models.events import MAX_ID_LENGTH
from server.auth import SecretKey
from server.errors import ApiError
from server.responses import JSONResponse
from state import privacy

router = APIRouter(tags=["visitors"])

# Ids may hold "/" (the event schema allows it), so the routes take the rest of the path;
# the export route is declared first, so ".../export" is never read as an id.
VisitorId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


@router.get("/v1/visitors/{visitor_id:path}/export", summary="Everything held about a visitor")
async def export_visitor(request: Request, visitor_id: VisitorId, _: SecretKey) -> Response:
    """A data-subject access request: the visitor, the customer they are linked to and
    its other visitors; every key, every stored event and every message sent."""
    redis = request.app.state.redis
    found = await privacy.footprint(redis, visitor_id)
    if not await privacy.holds_anything(redis, found):
        raise ApiError(404, "visitor_not_found", "nothing is held about this visitor")
    return JSONResponse(await privacy.export(redis, found))


@router.get("/v1/visitors/{visitor_id:path}", summary="A visitor's live profile")
async def get_visitor(request: Request, visitor_id: VisitorId, _: SecretKey) -> Response:
    """Orders, lifetime value, AOV, loyalty tier and points, segments, recent items."""
    people = request.app.state.people
    person = await people.evaluate(visitor_id)
    if person is None:
        raise ApiError(404, "visitor_not_found", "no events recorded for this visitor")
    return JSONResponse(people.profile(person))


@router.delete("/v1/visitors/{visitor_id:path}", summary="Erase a visitor and their customer")
async def erase_visitor(request: Request, visitor_id: VisitorId, _: SecretKey) -> Response:
    """Removes the visitor, the linked customer and its visitors: their keys, their
    entries in the behaviour and outbox streams, their scheduled messages; training
    exports skip them from then on. Aggregates (counts, revenue totals) stay."""
    redis = request.app.state.redis
    found = await privacy.footprint(redis, visitor_id)
    if not await privacy.holds_anything(redis, found):
        raise ApiError(404, "visitor_not_found", "nothing is held about this visitor")
    removed = await privacy.erase(redis, found, request.app.state.settings.privacy_secret)
    return JSONResponse({"erased": sorted(found.visitors), "customers": sorted(found.customers),
                         **removed})  # fmt: skip

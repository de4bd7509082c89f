"""Segments, dynamic content, offers and redemptions, driven by the campaigns file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from campaigns.rules import FACTS
from models.events import MAX_ID_LENGTH, Identifier
from server.auth import PublicKey, SecretKey
from server.errors import ApiError
from server.responses import JSONResponse
from state.segments import segment_sizes

router = APIRouter(tags=["campaigns"])

VisitorQuery = Annotated[str, Query(min_length=1, max_length=MAX_ID_LENGTH)]


class RedeemRequest(BaseModel):
    visitor_id: Identifier
    order_id: Identifier
    code: Identifier | None = None
    order_value: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False)


@router.get("/v1/segments", summary="Every segment with its definition and size")
async def segments(request: Request, _: SecretKey) -> Response:
    campaigns = request.app.state.campaigns.current
    sizes = await segment_sizes(request.app.state.redis, list(campaigns.segments))
    body = [
        {"name": name, "description": s.description, "rule": s.rule, "size": sizes[name]}
        for name, s in campaigns.segments.items()
    ]
    return JSONResponse({"segments": body, "facts": FACTS})


@router.get("/v1/content", summary="Content blocks for a visitor and slot")
async def content(
    request: Request,
    _: PublicKey,
    visitor_id: VisitorQuery,
    slot: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=20)] = 3,
) -> Response:
    people = request.app.state.people
    person = await people.evaluate(visitor_id, with_offers=False)
    return JSONResponse({"slot": slot, "blocks": people.content(person, slot, limit)})


@router.get("/v1/offers", summary="The offers a visitor is eligible for now")
async def offers(request: Request, _: PublicKey, visitor_id: VisitorQuery) -> Response:
    people = request.app.state.people
    person = await people.evaluate(visitor_id)
    return JSONResponse({"offers": people.offers(person) if person else []})


@router.post("/v1/offers/{offer_id}/redeem", summary="Redeem an offer for an order")
async def redeem(
    request: Request,
    offer_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: RedeemRequest,
    _: SecretKey,
) -> Response:
    """Idempotent per order; never twice per customer beyond its cap; never over budget."""
    people = request.app.state.people
    person = await people.evaluate(body.visitor_id)
    if person is None:
        raise ApiError(404, "visitor_not_found", "no events recorded for this visitor")
    outcome = await people.redeem(person, offer_id, body.order_id, body.code, body.order_value)
    return JSONResponse(outcome)


@router.get("/v1/campaigns", summary="The campaigns file in force and any refused edit")
async def campaigns_status(request: Request, _: SecretKey) -> Response:
    store = request.app.state.campaigns
    current = store.current
    return JSONResponse(
        {
            "path": str(store.path) if store.path else None,
            "segments": len(current.segments),
            "content_blocks": len(current.content),
            "offers": [offer.id for offer in current.offers],
            "last_error": store.last_error,
        }
    )

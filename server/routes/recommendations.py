"""Personal recommendations per placement, trending, and batches for email renderers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from models.recommend import Filters
from server.auth import PublicKey, SecretKey
from server.recommending import respond
from server.responses import JSONResponse
from server.schemas import (
    BatchRequest,
    BatchResponse,
    Category,
    Limit,
    RecommendationQuery,
    RecommendationResponse,
)

router = APIRouter(tags=["recommendations"])


@router.get(
    "/v1/recommendations",
    response_model=RecommendationResponse,
    summary="Recommendations for a visitor and placement",
)
async def recommendations(
    request: Request, query: Annotated[RecommendationQuery, Query()], _: PublicKey
) -> Response:
    """Folds the visitor's latest interactions into the model in this very request."""
    return JSONResponse(await request.app.state.recommendations.answer(query))


@router.post(
    "/v1/recommendations/batch",
    response_model=BatchResponse,
    summary="Recommendations for many recipients at once",
)
async def batch(request: Request, body: BatchRequest, _: SecretKey) -> Response:
    service = request.app.state.recommendations
    if not body.distinct:
        return JSONResponse({"results": await service.answer_many(body.requests)})
    # One page's widgets: each later placement excludes what earlier ones showed.
    shown: dict[str | None, list[str]] = {}
    answers = []
    for query in body.requests:
        seen = shown.setdefault(query.visitor_id, [])
        answer = await service.answer(query.model_copy(update={"exclude": query.exclude + seen}))
        seen.extend(item["item_id"] for item in answer["items"])
        answers.append(answer)
    return JSONResponse({"results": answers})


@router.get("/v1/trending", response_model=RecommendationResponse, summary="Trending items")
async def trending(
    request: Request,
    _: PublicKey,
    limit: Limit = 10,
    category: Category = None,
) -> Response:
    recommender = await request.app.state.recommendations.current()
    ranked = recommender.trending(Filters(category=category), limit)
    return JSONResponse(respond(recommender, "home", "trending", ranked))

"""The catalog: upserts, lookups, and item-to-item recommendations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from models.events import MAX_ID_LENGTH
from models.recommend import Filters, Recommender
from server.auth import PublicKey, SecretKey
from server.errors import ApiError
from server.recommending import respond
from server.responses import JSONResponse
from server.schemas import Category, ItemsUpsert, ItemsUpserted, Limit, RecommendationResponse
from state import catalog as catalog_store

router = APIRouter(tags=["catalog"])

ItemId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


@router.put("/v1/items", response_model=ItemsUpserted, summary="Create or update catalog items")
async def put_items(request: Request, body: ItemsUpsert, _: SecretKey) -> Response:
    limit = request.app.state.settings.max_items_per_request
    if len(body.items) > limit:
        raise ApiError(413, "too_many_items", f"an upsert holds at most {limit} items")
    items = [item.model_dump(mode="json", exclude_none=True) for item in body.items]
    count = await catalog_store.upsert_items(request.app.state.redis, items)
    request.app.state.engine.apply_items(items)
    return JSONResponse({"upserted": count})


@router.get("/v1/items/{item_id}", summary="A catalog item")
async def get_item(request: Request, item_id: ItemId, _: PublicKey) -> Response:
    item = await catalog_store.get_item(request.app.state.redis, item_id)
    item = item or request.app.state.engine.item(item_id)
    if item is None:
        raise ApiError(404, "item_not_found", "no such item")
    return JSONResponse(item)


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=RecommendationResponse,
    summary="Items similar to this one",
)
async def similar(
    request: Request, item_id: ItemId, _: PublicKey, limit: Limit = 10, category: Category = None
) -> Response:
    recommender, index = await _anchor(request, item_id)
    ranked = recommender.similar(index, Filters(category=category), limit)
    return JSONResponse(respond(recommender, "product", "similar", ranked))


@router.get(
    "/v1/items/{item_id}/bought-together",
    response_model=RecommendationResponse,
    summary="Items often bought with this one",
)
async def bought_together(
    request: Request, item_id: ItemId, _: PublicKey, limit: Limit = 10, category: Category = None
) -> Response:
    recommender, index = await _anchor(request, item_id)
    ranked = recommender.bought_together([index], Filters(category=category), limit)
    return JSONResponse(respond(recommender, "cart", "bought_together", ranked))


async def _anchor(request: Request, item_id: str) -> tuple[Recommender, int]:
    """The served recommender (catalog synced) and the model's index of the item, or 404."""
    recommender: Recommender = await request.app.state.recommendations.current()
    index = recommender.bundle.index_of.get(item_id)
    if index is None:
        raise ApiError(404, "item_not_found", "the model does not know this item")
    return recommender, index

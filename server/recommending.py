"""Answering a recommendation query: read the visitor, rank, shape the response."""

from __future__ import annotations

import time
import uuid
from typing import Any

from redis.asyncio import Redis

from models.recommend import (
    Filters,
    Recommended,
    Recommender,
    VisitorHistory,
    cap_per_category,
)
from server.engine import Engine
from server.errors import ApiError
from server.schemas import Placement, RecommendationQuery
from state import keys
from state.visitors import HISTORY_KINDS, history_from, read_person

DISPLAY_FIELDS = ("title", "category", "price", "url", "image_url")


class RecommendationService:
    def __init__(self, redis: Redis, engine: Engine, exclude_purchased: bool) -> None:
        self._redis = redis
        self._engine = engine
        self._exclude_purchased = exclude_purchased

    async def answer(self, query: RecommendationQuery) -> dict[str, Any]:
        history = await self.read_history(query.visitor_id)
        recommender = self.recommender()
        strategy, ranked = self._rank(recommender, query, history)
        return respond(recommender, query.placement.value, strategy, ranked)

    async def read_history(self, visitor_id: str | None) -> VisitorHistory:
        """The visitor's history, syncing the catalog from the same round trip."""
        if visitor_id is None:
            await self.current()
            return VisitorHistory()
        state = await read_person(self._redis, visitor_id, HISTORY_KINDS, (keys.CATALOG_REV,))
        await self._engine.sync_catalog(state.extras[0])
        history = history_from(state.values)
        if not self._exclude_purchased:
            history = VisitorHistory(history.interactions, frozenset(), history.cart)
        return history

    async def current(self) -> Recommender:
        """The served recommender, with the catalog view brought up to date."""
        await self._engine.sync_catalog(str(await self._redis.get(keys.CATALOG_REV) or "") or None)
        return self.recommender()

    def recommender(self) -> Recommender:
        """The model being served now; 503 until the first bundle is loaded."""
        recommender = self._engine.recommender
        if recommender is None:
            raise ApiError(503, "model_unavailable", "no trained model is loaded yet")
        return recommender

    def _rank(
        self, recommender: Recommender, query: RecommendationQuery, history: VisitorHistory
    ) -> tuple[str, list[Recommended]]:
        filters = Filters(category=query.category, exclude=frozenset(query.exclude))
        now = time.time()
        cap = query.max_per_category
        # With a category cap, rank a longer list and let the cap thin it out.
        limit = query.limit if cap is None else min(query.limit * 5, recommender.bundle.n_items)
        strategy, ranked = self._dispatch(recommender, query, history, filters, limit, now)
        if cap is not None:
            ranked = cap_per_category(ranked, recommender.catalog, cap, query.limit)
        return strategy, ranked

    def _dispatch(
        self,
        recommender: Recommender,
        query: RecommendationQuery,
        history: VisitorHistory,
        filters: Filters,
        limit: int,
        now: float,
    ) -> tuple[str, list[Recommended]]:
        placement = query.placement
        if placement is Placement.PRODUCT:
            if query.item_id is None:
                raise ApiError(422, "invalid_request", "the product placement needs item_id")
            index = recommender.bundle.index_of.get(query.item_id)
            if index is not None:
                return "similar", recommender.product(index, history, filters, limit, now)
        elif placement is Placement.CART and history.cart:
            return "bought_together", recommender.cart(history, filters, limit, now)
        elif placement is Placement.POST_PURCHASE and history.purchased:
            return "bought_together", recommender.post_purchase(history, filters, limit, now)
        strategy = "trending" if history.is_empty else "personal"
        return strategy, recommender.personal(history, filters, limit, now)


def respond(
    recommender: Recommender, placement: str, strategy: str, ranked: list[Recommended]
) -> dict[str, Any]:
    """The contract's response: ids, version and each item with its display fields.

    Takes the recommender that ranked, so a model swap mid-request cannot mix bundles.
    """
    catalog = recommender.catalog
    items = []
    for entry in ranked:
        item = catalog.items[entry.index]
        shown = {"item_id": item["item_id"], "score": round(entry.score, 6), "reason": entry.reason}
        shown.update({name: item.get(name) for name in DISPLAY_FIELDS})
        items.append(shown)
    return {
        "recommendation_id": uuid.uuid4().hex,
        "placement": placement,
        "model_version": recommender.bundle.version,
        "strategy": strategy,
        "items": items,
    }

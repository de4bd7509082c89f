"""Answering a recommendation query: read the visitor, rank, shape the response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from campaigns.attribution import RecommendationTag, new_recommendation_id
from campaigns.experiments import Experiment, Strategy, Variant, experiment_for
from models.recommend import (
    Filters,
    Recommended,
    Recommender,
    VisitorHistory,
    cap_per_category,
)
from server.campaign_store import CampaignStore
from server.circuit import CircuitBreaker, RedisUnavailable
from server.engine import Engine
from server.errors import ApiError
from server.schemas import Placement, RecommendationQuery
from state import catalog as catalog_store
from state import keys
from state.fanout import map_bounded
from state.multiplex import Lanes
from state.visitors import HISTORY_KINDS, PersonReader, history_from

DISPLAY_FIELDS = ("title", "category", "price", "url", "image_url")
SEND_TTL_SECONDS = 30 * 24 * 3600
# Recipients a batch ranks before yielding the event loop: about 10 ms of ranking, so a
# batch of 1,000 cannot hold a storefront request on the same worker for half a second.
RANK_CHUNK = 16


class RecommendationService:
    def __init__(
        self,
        redis: Redis,
        engine: Engine,
        campaigns: CampaignStore,
        lanes: Lanes | None = None,
    ) -> None:
        self._redis = redis
        self._reader = PersonReader(redis, lanes)
        self._engine = engine
        self._campaigns = campaigns
        self._breaker = CircuitBreaker()

    async def answer(self, query: RecommendationQuery) -> dict[str, Any]:
        if query.send_id is not None and query.visitor_id is not None:
            try:
                return await self._breaker.guard(
                    self._answer_for_send(query, query.send_id, query.visitor_id)
                )
            except RedisUnavailable:
                pass  # the pinned answer is out of reach: a fresh one, marked degraded
        return await self._fresh_answer(query)

    async def answer_many(self, queries: Sequence[RecommendationQuery]) -> list[dict[str, Any]]:
        """`answer` for each query of a batch, in order. Every recipient's history is
        read in two round trips for all of them rather than one each, which was most of
        a recipient's cost; each is then ranked as `answer` ranks it. A query pinned to
        an email send keeps `answer`'s path, since it reads and writes its pin."""
        pinned = [query.send_id is not None and query.visitor_id is not None for query in queries]
        fresh = [query for query, pin in zip(queries, pinned, strict=True) if not pin]
        try:
            visitors = [query.visitor_id for query in fresh]
            histories = await self._breaker.guard(self.read_histories(visitors)) if fresh else []
            degraded = False
        except RedisUnavailable:
            histories, degraded = [VisitorHistory()] * len(fresh), True
        pairs = list(zip(fresh, histories, strict=True))
        answers = []
        for start in range(0, len(pairs), RANK_CHUNK):
            if start:  # a batch's ranking is long: let this worker's other requests in
                await asyncio.sleep(0)
            chunk = pairs[start : start + RANK_CHUNK]
            answers += [self._answer_from(query, history, degraded) for query, history in chunk]
        to_sends = [query for query, pin in zip(queries, pinned, strict=True) if pin]
        sent = await map_bounded(self.answer, to_sends)
        fresh_answers, sent_answers = iter(answers), iter(sent)
        return [next(sent_answers) if pin else next(fresh_answers) for pin in pinned]

    async def _fresh_answer(self, query: RecommendationQuery) -> dict[str, Any]:
        """With Redis out of reach the model in memory still answers, without the
        visitor's history (bestsellers, or similar items on a product page)."""
        try:
            history = await self._breaker.guard(self.read_history(query.visitor_id))
            degraded = False
        except RedisUnavailable:
            history, degraded = VisitorHistory(), True
        return self._answer_from(query, history, degraded)

    def _answer_from(
        self, query: RecommendationQuery, history: VisitorHistory, degraded: bool
    ) -> dict[str, Any]:
        answer = self._ranked_answer(query, history)
        answer["degraded"] = degraded
        return answer

    def _ranked_answer(self, query: RecommendationQuery, history: VisitorHistory) -> dict[str, Any]:
        recommender = self.recommender()
        arm = self._arm(query)
        if arm is not None and arm[1].strategy is Strategy.TRENDING:
            filters = Filters(category=query.category, exclude=frozenset(query.exclude))
            ranked = recommender.trending(filters, query.limit)
            return respond(recommender, query.placement.value, "trending", ranked, arm)
        strategy, ranked = self._rank(recommender, query, history)
        return respond(recommender, query.placement.value, strategy, ranked, arm)

    def _arm(self, query: RecommendationQuery) -> tuple[Experiment, Variant] | None:
        """The experiment running on this placement and the visitor's variant in it."""
        if query.visitor_id is None:
            return None
        experiment = experiment_for(self._campaigns.current.experiments, query.placement.value)
        if experiment is None:
            return None
        return experiment, experiment.assign(query.visitor_id)

    async def _answer_for_send(
        self, query: RecommendationQuery, send_id: str, visitor_id: str
    ) -> dict[str, Any]:
        """The first answer for this send and recipient, every time: a re-opened email
        shows what it showed before. SET NX settles a race between two first opens."""
        key = keys.send_key(send_id, query.placement.value, visitor_id)
        stored = await self._redis.get(key)
        if stored is None:
            answer = await self._fresh_answer(query)
            if answer["degraded"]:
                return answer  # never pin an answer made without the visitor's history
            fresh = orjson.dumps(answer)
            if await self._redis.set(key, fresh, nx=True, ex=SEND_TTL_SECONDS):
                return answer
            stored = await self._redis.get(key)
        return dict(orjson.loads(stored or b"{}"))

    async def read_history(self, visitor_id: str | None) -> VisitorHistory:
        """The visitor's history, syncing the catalog from the same round trip."""
        if visitor_id is None:
            await self.current()
            return VisitorHistory()
        state = await self._reader.read(visitor_id, HISTORY_KINDS, (keys.CATALOG_REV,))
        await self._engine.sync_catalog(state.extras[0])
        return history_from(state.values)

    async def read_histories(self, visitor_ids: Sequence[str | None]) -> list[VisitorHistory]:
        """`read_history` for many visitors (each read once), with the catalog synced from
        a revision read beside them."""
        known = [visitor for visitor in dict.fromkeys(visitor_ids) if visitor is not None]
        states, revision = await asyncio.gather(
            self._reader.read_many(known, HISTORY_KINDS), catalog_store.revision(self._redis)
        )
        await self._engine.sync_catalog(revision)
        by_visitor = {
            visitor: history_from(state.values)
            for visitor, state in zip(known, states, strict=True)
        }
        return [
            by_visitor[visitor] if visitor is not None else VisitorHistory()
            for visitor in visitor_ids
        ]

    async def current(self) -> Recommender:
        """The served recommender, with the catalog view brought up to date when Redis
        can say what changed (else the catalog as last synced)."""
        try:
            revision = await self._breaker.guard(catalog_store.revision(self._redis))
        except RedisUnavailable:
            return self.recommender()
        await self._engine.sync_catalog(revision)
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
        if cap is None:
            return self._dispatch(recommender, query, history, filters, query.limit, now)
        # With a category cap, rank longer and longer lists until the cap leaves enough.
        wide = query.limit * 5
        while True:
            wide = min(wide, recommender.bundle.n_items)
            strategy, ranked = self._dispatch(recommender, query, history, filters, wide, now)
            capped = cap_per_category(ranked, recommender.catalog, cap, query.limit)
            if (
                len(capped) == query.limit
                or len(ranked) < wide
                or wide == recommender.bundle.n_items
            ):
                return strategy, capped
            wide *= 4

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
    recommender: Recommender,
    placement: str,
    strategy: str,
    ranked: list[Recommended],
    arm: tuple[Experiment, Variant] | None = None,
) -> dict[str, Any]:
    """The contract's response: ids, version and each item with its display fields.

    Takes the recommender that ranked, so a model swap mid-request cannot mix bundles.
    The recommendation id carries placement, model and variant for attribution.
    """
    catalog = recommender.catalog
    items = []
    for entry in ranked:
        item = catalog.items[entry.index]
        shown = {"item_id": item["item_id"], "score": round(entry.score, 6), "reason": entry.reason}
        shown.update({name: item.get(name) for name in DISPLAY_FIELDS})
        items.append(shown)
    experiment, variant = arm if arm is not None else (None, None)
    tag = RecommendationTag(
        placement,
        recommender.bundle.version,
        experiment.name if experiment else None,
        variant.name if variant else None,
    )
    return {
        "recommendation_id": new_recommendation_id(tag),
        "placement": placement,
        "model_version": recommender.bundle.version,
        "strategy": strategy,
        "degraded": False,
        "experiment": (
            {"name": experiment.name, "variant": variant.name, "holdout": variant.holdout}
            if experiment and variant
            else None
        ),
        "items": items,
    }

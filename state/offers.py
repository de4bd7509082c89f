"""Offer redemptions: counted atomically in Redis, one script per redemption."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from redis.asyncio import Redis

from state import keys

_SCRIPT = resources.files("state").joinpath("redeem.lua").read_text()
OUTCOMES = ("redeemed", "duplicate", "order_used", "limit_reached", "budget_exhausted")


class Redemptions:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)

    async def redeem(
        self, offer_id: str, order_id: str, person: str, limit: int, budget: int, points: int
    ) -> str:
        """One of OUTCOMES; only "redeemed" changed anything."""
        names = [keys.offer_key(kind, offer_id) for kind in ("orders", "people", "points")]
        outcome = await self._script(keys=names, args=[order_id, person, limit, budget, points])
        return str(outcome)

    async def counts(
        self, offer_ids: Sequence[str], person: str
    ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Per offer: the person's redemptions, everyone's, and the person's points spent."""
        pipe = self._redis.pipeline(transaction=False)
        for offer_id in offer_ids:
            pipe.hget(keys.offer_key("people", offer_id), person)
            pipe.hlen(keys.offer_key("orders", offer_id))
            pipe.hget(keys.offer_key("points", offer_id), person)
        replies = await pipe.execute()
        mine, total, points = {}, {}, {}
        for n, offer_id in enumerate(offer_ids):
            mine[offer_id] = int(replies[3 * n] or 0)
            total[offer_id] = int(replies[3 * n + 1] or 0)
            points[offer_id] = int(replies[3 * n + 2] or 0)
        return mine, total, points

"""Offer redemptions: counted atomically in Redis, one script per redemption."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from redis.asyncio import Redis

from state import keys

_SCRIPT = resources.files("state").joinpath("redeem.lua").read_text()
OUTCOMES = ("redeemed", "duplicate", "order_used", "limit_reached", "budget_exhausted")


@dataclass(frozen=True)
class RedemptionCounts:
    """Per offer: the person's redemptions, everyone's, and the person's points spent."""

    mine: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)


class Redemptions:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)

    async def redeem(
        self, offer_id: str, order_id: str, person: str, limit: int, budget: int, points: int
    ) -> str:
        """One of OUTCOMES; only "redeemed" changed anything."""
        names = [keys.offer_key("orders", offer_id), keys.offer_key("stats", offer_id)]
        outcome = await self._script(keys=names, args=[order_id, person, limit, budget, points])
        return str(outcome)

    async def counts(self, offer_ids: Sequence[str], person: str) -> RedemptionCounts:
        """One command per offer, all in one round trip."""
        if not offer_ids:
            return RedemptionCounts()
        pipe = self._redis.pipeline(transaction=False)
        for offer_id in offer_ids:
            pipe.hmget(keys.offer_key("stats", offer_id), ["total", f"p:{person}", f"pts:{person}"])
        counts = RedemptionCounts()
        for offer_id, (total, mine, points) in zip(offer_ids, await pipe.execute(), strict=True):
            counts.total[offer_id] = int(total or 0)
            counts.mine[offer_id] = int(mine or 0)
            counts.points[offer_id] = int(points or 0)
        return counts

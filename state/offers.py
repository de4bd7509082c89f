"""Offer redemptions: counted atomically in Redis, one script per redemption."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from redis.asyncio import Redis

from state import keys

_SCRIPT = resources.files("state").joinpath("redeem.lua").read_text()
# The stats fields the read script fetches per offer, in RedemptionCounts.add's order.
STAT_FIELDS = tuple(keys.OFFER_STAT_FIELDS[name] for name in ("total", "count", "points", "period"))


@dataclass(frozen=True)
class RedemptionCounts:
    """Per offer: the person's redemptions, everyone's, the person's points spent, and
    their latest redemption period with its count."""

    mine: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    periods: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, offer_id: str, replies: tuple[str | None, ...]) -> None:
        """Take one offer's STAT_FIELDS replies."""
        total, mine, points, period = replies
        self.total[offer_id] = int(total or 0)
        self.mine[offer_id] = int(mine or 0)
        self.points[offer_id] = int(points or 0)
        name, _, count = (period or "").rpartition("|")
        self.periods[offer_id] = (name, int(count or 0))


class Redemptions:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)

    async def redeem(
        self,
        offer_id: str,
        order_id: str,
        person: str,
        terms: RedeemTerms,
    ) -> str:
        """redeemed, duplicate, order_used, limit_reached, budget_exhausted,
        insufficient_points or not_eligible; only "redeemed" changed anything."""
        names = [keys.offer_key("orders", offer_id), keys.offer_key("stats", offer_id)]
        args: list[str | int] = [
            order_id,
            person,
            terms.limit,
            terms.budget,
            terms.points,
            terms.points_earned,
            "retry" if terms.retry_only else "redeem",
            terms.period,
            "lifetime" if terms.lifetime_cap else "period",
            *(keys.OFFER_STAT_FIELDS[name] % person for name in ("count", "points", "period")),
        ]
        outcome = str(await self._script(keys=names, args=args))
        if outcome in ("redeemed", "duplicate"):
            # In the person's own slot, so that a visitor -> customer merge can carry the
            # counts; a duplicate repairs a mark that a failure here left unwritten.
            await self._redis.sadd(keys.person_key("redeemed", person), offer_id)
        return outcome


@dataclass(frozen=True)
class RedeemTerms:
    """What a redemption may do: caps (0: none), points to spend, or only repeat itself."""

    limit: int = 0
    budget: int = 0
    points: int = 0
    points_earned: int = 0
    retry_only: bool = False
    period: str = ""  # the cap counts redemptions within this period
    lifetime_cap: bool = False  # count every redemption ever instead

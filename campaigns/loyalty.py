"""The loyalty programme: tiers by trailing-12-month spend, points per dollar by tier.

Points are derived from the order ledger every time, never incremented: an order counts
once because the ledger is keyed by order id, and a returned order simply stops
counting. Each order earns at the rate of the tier the customer held when placing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from campaigns.config import Loyalty, Tier
from campaigns.person import Order
from models.weights import SECONDS_PER_DAY

YEAR = 365 * SECONDS_PER_DAY


@dataclass(frozen=True)
class LoyaltyStatus:
    tier: str
    label: str
    points: int  # spendable: earned minus spent
    earned: int
    spend_12m: float
    perks: tuple[str, ...]


def tier_for(spend_12m: float, loyalty: Loyalty) -> Tier:
    return [tier for tier in loyalty.tiers if spend_12m >= tier.min_spend_12m][-1]


def spend_before(orders: Sequence[Order], moment: float) -> float:
    """Net spend in the 12 months before `moment` (orders placed strictly earlier)."""
    return sum(o.value for o in orders if not o.returned and moment - YEAR <= o.at < moment)


def loyalty_status(
    orders: Sequence[Order], points_spent: int, loyalty: Loyalty, now: float
) -> LoyaltyStatus:
    kept = sorted((o for o in orders if not o.returned), key=lambda o: o.at)
    earned = 0.0
    for order in kept:
        rate = tier_for(spend_before(kept, order.at), loyalty).points_per_dollar
        earned += order.value * rate
    spend_12m = sum(o.value for o in kept if now - YEAR <= o.at <= now)
    tier = tier_for(spend_12m, loyalty)
    return LoyaltyStatus(
        tier=tier.name,
        label=tier.label,
        points=max(int(earned) - points_spent, 0),
        earned=int(earned),
        spend_12m=round(spend_12m, 2),
        perks=tuple(tier.perks),
    )


def reward_percent(points: int, loyalty: Loyalty) -> int:
    """Percent off that `points` buy: 200 points = 20% off by default, capped."""
    return int(min(points / loyalty.points_per_percent_off, loyalty.reward_max_percent))

"""A person as the API shows them: profile, segments, content, offers, redemptions.

Reads the record from Redis, hands it to the pure rules in `campaigns`, and writes back
only what must be counted (segment membership, redemptions).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from campaigns.config import OfferKind
from campaigns.content import choose_content
from campaigns.offers import Eligible, offer_code
from server.campaign_store import CampaignStore
from server.engine import Engine
from server.errors import ApiError
from state import keys
from state.multiplex import Lanes
from state.offers import RedeemTerms
from state.people import PeopleStore, Person

# People re-evaluated per read after a batch of events: a 1,000-event batch touches
# about 150, and a chunk bounds what one read holds in memory.
REFRESH_CHUNK = 500


class PeopleService:
    def __init__(
        self,
        redis: Redis,
        engine: Engine,
        campaigns: CampaignStore,
        code_secret: str,
        lanes: Lanes | None = None,
    ) -> None:
        self._engine = engine
        self._campaigns = campaigns
        self._store = PeopleStore(redis, lambda: engine.churn, lanes)
        self._redemptions = self._store.redemptions
        self._secret = code_secret

    async def evaluate(self, visitor_id: str, with_offers: bool = True) -> Person | None:
        """Facts, segments and eligible offers; segment membership is kept current."""
        return await self._store.evaluate(
            visitor_id, self._campaigns.current, self._engine.item, with_offers=with_offers
        )

    async def refresh_segments(self, visitor_ids: set[str]) -> None:
        """After events: recompute the segments of every person they touched."""
        if not self._campaigns.current.segments:
            return
        ordered = sorted(visitor_ids)
        for start in range(0, len(ordered), REFRESH_CHUNK):
            await self._store.refresh_segments(
                ordered[start : start + REFRESH_CHUNK], self._campaigns.current, self._engine.item
            )

    def profile(self, person: Person) -> dict[str, Any]:
        record, facts = person.record, person.facts
        return {
            "visitor_id": person.visitor_id,
            "customer_id": keys.customer_of(record.person),
            "person": record.person,
            "segments": sorted(person.segments),
            **{k: v for k, v in facts.items() if k not in ("loyalty_perks",)},
            "loyalty": {
                "tier": facts["loyalty_tier"],
                "label": facts["loyalty_label"],
                "points": facts["loyalty_points"],
                "perks": facts["loyalty_perks"],
                "spend_12m": facts["spend_12m"],
            },
            "first_seen": record.number("first_seen"),
            "last_seen": record.number("last_seen"),
            "last_order_at": record.number("last_order_at"),
            "last_order_id": record.profile.get("last_order_id"),
            "events": int(record.number("events") or 0),
            "birthday": record.profile.get("birthday"),
            "cart": dict(record.cart),
            "wishlist": list(record.wishlist),
            "purchased": list(record.purchased),
            "recent_items": [
                {"item_id": x.item_id, "type": x.event_type, "timestamp": x.timestamp}
                for x in record.recent or ()
            ],
        }

    def content(self, person: Person | None, slot: str, limit: int) -> list[dict[str, Any]]:
        campaigns = self._campaigns.current
        if person is None:
            return choose_content(campaigns, slot, frozenset(), {}, limit)
        return choose_content(person.campaigns, slot, person.segments, person.facts, limit)

    def offers(self, person: Person) -> list[dict[str, Any]]:
        return [eligible.as_json(self._code(person, eligible)) for eligible in person.offers]

    async def redeem(
        self,
        person: Person,
        offer_id: str,
        order_id: str,
        code: str | None,
        order_value: float | None,
    ) -> dict[str, Any]:
        offer = person.campaigns.offer(offer_id)
        if offer is None:
            raise ApiError(404, "offer_not_found", "no such offer")
        choices = [e for e in person.offers if e.offer.id == offer_id]
        if code is not None:
            choices = [e for e in choices if self._code(person, e) == code]
        if not choices:  # not eligible now: only an exact retry of a past redemption passes
            outcome = await self._redemptions.redeem(
                offer_id, order_id, person.record.person, RedeemTerms(retry_only=True)
            )
            return self._answer(offer_id, order_id, outcome)
        eligible = choices[0]
        if eligible.min_order_value > 0 and order_value is None:
            raise ApiError(422, "order_value_required", "this offer has a minimum order value")
        if order_value is not None and order_value < eligible.min_order_value:
            raise ApiError(
                409, "below_minimum", f"this offer needs an order of {eligible.min_order_value}"
            )
        if offer.kind is OfferKind.LOYALTY_REWARD and not self._repeat_order(person, order_id):
            raise ApiError(409, "not_a_repeat_order", "rewards apply to repeat orders only")
        limit = {OfferKind.LOYALTY_REWARD: 0, OfferKind.REFERRAL_CREDIT: person.facts["referrals"]}
        terms = RedeemTerms(
            limit=int(limit.get(offer.kind, offer.per_customer_limit)),
            budget=offer.budget or 0,
            points=eligible.points_cost,
            points_earned=int(person.facts["loyalty_points_earned"]),
            period=eligible.period,
            lifetime_cap=offer.kind is OfferKind.REFERRAL_CREDIT,
        )
        outcome = await self._redemptions.redeem(offer_id, order_id, person.record.person, terms)
        return self._answer(offer_id, order_id, outcome)

    @staticmethod
    def _answer(offer_id: str, order_id: str, outcome: str) -> dict[str, Any]:
        if outcome in ("redeemed", "duplicate"):
            return {"offer_id": offer_id, "order_id": order_id, "status": outcome}
        raise ApiError(409, outcome, _REFUSALS[outcome])

    @staticmethod
    def _repeat_order(person: Person, order_id: str) -> bool:
        """At least one earlier kept order besides this one."""
        return any(order.key != order_id for order in person.record.kept_orders)

    def _code(self, person: Person, eligible: Eligible) -> str:
        return offer_code(self._secret, person.record.person, eligible.offer.id, eligible.item_id)


_REFUSALS = {
    "order_used": "this order already redeemed this offer for someone else",
    "limit_reached": "the visitor has used this offer as often as allowed",
    "budget_exhausted": "this offer's budget is spent",
    "insufficient_points": "not enough loyalty points",
    "not_eligible": "the visitor cannot use this offer now",
}

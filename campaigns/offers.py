"""Offer eligibility: which offers a person may use now, and why.

Pure: the caller passes the person's record and facts, their segments, how often they
(and everyone) already redeemed each offer, and the time. Each kind of offer has one
small rule below; the shared gates (validity window, segment targeting, per-customer
cap, total budget) apply to all of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from campaigns.config import Campaigns, DiscountType, Offer, OfferKind
from campaigns.facts import ItemLookup
from campaigns.loyalty import reward_percent
from campaigns.person import PersonRecord

WIN_BACK_DAYS = 180
MAX_WISHLIST_OFFERS = 3


@dataclass(frozen=True)
class Eligible:
    """One offer the person can use now, ready for the API."""

    offer: Offer
    reason: str
    discount_value: float
    expires_at: datetime | None = None
    item_id: str | None = None
    min_order_value: float = 0.0
    points_cost: int = 0
    period: str = ""  # what a per-customer cap counts within: a birthday year, a delay...

    def as_json(self, code: str) -> dict[str, Any]:
        return {
            "offer_id": self.offer.id,
            "kind": self.offer.kind.value,
            "title": self.offer.title,
            "discount_type": self.offer.discount_type.value,
            "discount_value": self.discount_value,
            "free_shipping": self.offer.free_shipping
            or self.offer.discount_type is DiscountType.FREE_SHIPPING,
            "min_order_value": self.min_order_value,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "item_id": self.item_id,
            "code": code,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Context:
    campaigns: Campaigns
    record: PersonRecord
    facts: Mapping[str, Any]
    segments: frozenset[str]
    item: ItemLookup
    now: datetime


def eligible_offers(
    context: Context,
    redeemed_by_person: Mapping[str, int],
    redeemed_total: Mapping[str, int],
    last_period: Mapping[str, tuple[str, int]] | None = None,
) -> list[Eligible]:
    """Offers the person may use now.

    `redeemed_by_person` counts over a lifetime (referral credits use it);
    `last_period` is, per offer, the period of the person's latest redemptions and how
    many: per-customer caps count within a period, so a birthday coupon comes back
    next year and a second delayed parcel earns a second apology.
    """
    found: list[Eligible] = []
    for offer in context.campaigns.offers:
        if not _gates_open(offer, context, redeemed_total):
            continue
        used_period, used = (last_period or {}).get(offer.id, ("", 0))
        for eligible in RULES[offer.kind](offer, context, redeemed_by_person.get(offer.id, 0)):
            within = used if used_period == eligible.period else 0
            if not capped(offer) or within < offer.per_customer_limit:
                found.append(eligible)
    return found


def capped(offer: Offer) -> bool:
    """Loyalty rewards are limited by points, referral credits by referrals."""
    return offer.kind not in (OfferKind.LOYALTY_REWARD, OfferKind.REFERRAL_CREDIT)


def offer_code(secret: str, person: str, offer_id: str, item_id: str | None = None) -> str:
    """A code unique to the person and offer (and item), stable across requests."""
    message = "\x1f".join(filter(None, (person, offer_id, item_id))).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    text = base64.b32encode(digest).decode()[:12]
    return f"{offer_id[:12].upper()}-{text[:6]}-{text[6:]}"


def _gates_open(offer: Offer, context: Context, redeemed_total: Mapping[str, int]) -> bool:
    now = context.now
    if offer.valid_from and now < offer.valid_from:
        return False
    if offer.valid_until and now >= offer.valid_until:
        return False
    if offer.segments and not context.segments & set(offer.segments):
        return False
    return offer.budget is None or redeemed_total.get(offer.id, 0) < offer.budget


def _loyalty_reward(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    loyalty = context.campaigns.loyalty
    points = int(context.facts["loyalty_points"])
    if points < loyalty.reward_min_points:
        return
    if loyalty.reward_needs_repeat_order and context.facts["orders"] < 1:
        return
    percent = reward_percent(points, loyalty)
    yield Eligible(
        offer,
        f"your {points} points buy {percent}% off your next order",
        discount_value=float(percent),
        min_order_value=max(offer.min_order_value, loyalty.reward_min_order_value),
        points_cost=int(percent * loyalty.points_per_percent_off),
    )


def _birthday(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    birthday = _parse_birthday(context.record.profile.get("birthday"))
    today = context.now.date()
    if birthday is None or (birthday.month, birthday.day) != (today.month, today.day):
        return
    hours = offer.valid_hours or 24
    start = datetime(today.year, today.month, today.day, tzinfo=UTC)
    yield _plain(
        offer, "happy birthday!", expires_at=start + timedelta(hours=hours), period=str(today.year)
    )


def _win_back(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    days = context.facts["days_since_last_order"]
    if days is not None and days >= WIN_BACK_DAYS:
        last = max(order.at for order in context.record.kept_orders)
        yield _plain(offer, f"we miss you: no order for {int(days)} days", period=f"{last:.0f}")


def _wishlist(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    shown = 0
    for item_id in context.record.wishlist:
        item = context.item(item_id)
        if item is None or not item.get("in_stock", True):
            continue
        title = item.get("title") or item_id
        yield _plain(offer, f"on your wishlist: {title}", item_id=item_id, period=item_id)
        shown += 1
        if shown == MAX_WISHLIST_OFFERS:
            return


def _cart_recovery(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    idle = context.facts["hours_since_last_seen"]
    if context.facts["cart_value"] > 0 and idle is not None and idle >= offer.idle_hours:
        carted = context.record.last_time("add_to_cart") or 0.0
        reason = f"your cart ({context.facts['cart_value']:.2f}) is waiting"
        yield _plain(offer, reason, period=f"{carted:.0f}")


def _scarcity(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    assert offer.valid_until is not None
    until = offer.valid_until
    if offer.announce_hours is None or until - context.now <= timedelta(hours=offer.announce_hours):
        yield _plain(offer, "ends soon", expires_at=until)


def _shipment_apology(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    delayed = context.record.last_time("shipment_delayed")
    if delayed is None:
        return
    expires = datetime.fromtimestamp(delayed, UTC) + timedelta(hours=offer.valid_hours or 72)
    if context.now < expires:
        yield _plain(
            offer, "sorry your parcel is late", expires_at=expires, period=f"{delayed:.0f}"
        )


def _referral(offer: Offer, context: Context, used: int) -> Iterator[Eligible]:
    referrals = int(context.facts["referrals"])
    if referrals > used:
        yield _plain(offer, f"{referrals - used} friend(s) joined through you")


def _free_gift(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    if context.facts["orders"] < 1:
        return
    bought = set(context.facts["categories_bought"])
    for item_id in offer.gift_items:
        item = context.item(item_id)
        if item and item.get("in_stock", True) and item.get("category") not in bought:
            category = item.get("category") or "something new"
            month = context.now.strftime("%Y-%m")
            yield _plain(offer, f"a gift to try {category}", item_id=item_id, period=month)
            return


def _cashback(offer: Offer, context: Context, _: int) -> Iterator[Eligible]:
    kept = context.record.kept_orders
    if not kept:
        return
    last = max(kept, key=lambda order: order.at)
    placed = datetime.fromtimestamp(last.at, UTC)
    expires = placed + timedelta(hours=offer.valid_hours or 30 * 24)
    if last.value >= offer.min_order_value and context.now < expires:
        amount = round(last.value * offer.cashback_percent / 100, 2)
        if amount > 0:
            yield Eligible(
                offer, f"cashback from order {last.key}", amount, expires, period=last.key
            )


def _plain(
    offer: Offer,
    reason: str,
    expires_at: datetime | None = None,
    item_id: str | None = None,
    period: str = "",
) -> Eligible:
    expires = expires_at or (offer.valid_until if offer.valid_until else None)
    minimum = offer.min_order_value
    return Eligible(offer, reason, offer.discount_value, expires, item_id, minimum, period=period)


def _parse_birthday(value: str | None) -> date | None:
    """YYYY-MM-DD or MM-DD; anything else is no birthday."""
    if not value:
        return None
    try:
        if len(value) == 5:
            return date(2000, int(value[:2]), int(value[3:]))
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


RULES: dict[OfferKind, Callable[[Offer, Context, int], Iterator[Eligible]]] = {
    OfferKind.LOYALTY_REWARD: _loyalty_reward,
    OfferKind.BIRTHDAY: _birthday,
    OfferKind.WIN_BACK: _win_back,
    OfferKind.WISHLIST_DISCOUNT: _wishlist,
    OfferKind.CART_RECOVERY: _cart_recovery,
    OfferKind.SCARCITY: _scarcity,
    OfferKind.SHIPMENT_DELAY_APOLOGY: _shipment_apology,
    OfferKind.REFERRAL_CREDIT: _referral,
    OfferKind.FREE_GIFT: _free_gift,
    OfferKind.CASHBACK: _cashback,
}

"""From a person's record to the facts segment rules, content and offers read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from campaigns.config import Loyalty
from campaigns.loyalty import loyalty_status
from campaigns.person import PersonRecord
from models.churn import ChurnScores
from models.weights import SECONDS_PER_DAY

ItemLookup = Callable[[str], Mapping[str, Any] | None]
# The facts drawn from the recent-interactions list: up to a hundred entries, the largest
# part of a person to read and decode. A segment refresh whose rules compare none of them
# reads people without it (PersonRecord.recent is None), and these facts are unknown.
RECENT_FACTS = frozenset({"categories_viewed"})


def compute_facts(
    record: PersonRecord,
    item: ItemLookup,
    loyalty: Loyalty,
    points_spent: int,
    now: float,
    churn: ChurnScores | None = None,
) -> dict[str, Any]:
    """Everything rules may test. Churn risk and predicted value come scored from the
    churn models, and are unknown (None) without them or for someone who never bought."""
    kept = record.kept_orders
    ltv = round(sum(order.value for order in kept), 2)
    last_order = max((order.at for order in kept), default=None)
    first_seen, last_seen = record.number("first_seen"), record.number("last_seen")
    cart_value = 0.0
    for item_id, quantity in record.cart.items():
        price = (item(item_id) or {}).get("price")
        cart_value += float(price or 0.0) * quantity
    status = loyalty_status(record.orders, points_spent, loyalty, now)
    return {
        "lifetime_value": ltv,
        "orders": len(kept),
        "average_order_value": round(ltv / len(kept), 2) if kept else None,
        "spend_12m": status.spend_12m,
        "days_since_last_order": _days(now, last_order),
        "tenure_days": _days(now, first_seen),
        "hours_since_last_seen": None if last_seen is None else (now - last_seen) / 3600,
        "cart_value": round(cart_value, 2),
        "cart_items": sum(record.cart.values()),
        "wishlist_items": len(record.wishlist),
        "categories_bought": sorted(_categories(record.purchased, item)),
        "categories_viewed": _viewed_categories(record, item),
        "email_opt_in": record.flag("email_opt_in"),
        "sms_opt_in": record.flag("sms_opt_in"),
        "is_customer": record.is_customer,
        "churn_risk": churn.churn_risk if churn else None,
        "predicted_value": churn.predicted_value if churn else None,
        "loyalty_points": status.points,
        "loyalty_points_earned": status.earned,
        "loyalty_tier": status.tier,
        "loyalty_label": status.label,
        "loyalty_perks": list(status.perks),
        "referrals": int(record.number("referrals") or 0),
    }


def _days(now: float, moment: float | None) -> float | None:
    return None if moment is None else (now - moment) / SECONDS_PER_DAY


def _viewed_categories(record: PersonRecord, item: ItemLookup) -> list[str] | None:
    """Unknown when the recent list was not read (see RECENT_FACTS)."""
    if record.recent is None:
        return None
    return sorted(_categories((x.item_id for x in record.recent if x.event_type == "view"), item))


def _categories(item_ids: Any, item: ItemLookup) -> set[str]:
    found = set()
    for item_id in item_ids:
        category = (item(item_id) or {}).get("category")
        if category:
            found.add(str(category))
    return found

"""Storing behaviour events: one atomic Lua call per request.

`event_op` is the pure part: it turns a validated event into the small set of updates
it implies (recent interactions, cart changes, an order). The Lua script applies a
whole request's ops at once, so a request is stored whole or not at all, an `event_id`
is accepted only once, and an anonymous visitor's history merges into the customer the
moment an event names both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from models.events import MAX_ID_LENGTH, Event, EventType, LineItem
from models.weights import SECONDS_PER_DAY, event_weight
from settings import Settings
from state import keys
from state.interactions import encode_interaction

# Consent may change with any event (a preference centre, an unsubscribe link, checkout);
# a birthday is taken at signup.
CONSENT_FIELDS = ("email_opt_in", "sms_opt_in")
SIGNUP_FIELDS = ("birthday",)
# Attribution touches kept per person: plenty for a 24-hour click window.
TOUCHES_CAP = 50
_SCRIPT = resources.files("state").joinpath("ingest.lua").read_text()


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    # Per event: the person it was stored under (None for a duplicate), and whether it
    # recorded an order the ledger did not hold yet.
    persons: tuple[str | None, ...] = ()
    new_orders: tuple[bool, ...] = ()


def event_op(event: Event, now: datetime) -> dict[str, Any]:
    """The updates one event implies, as plain JSON-ready data (no nulls: Lua sees them)."""
    at = event.occurred_at(now)
    ts = at.timestamp()
    record = event.model_dump(mode="json", exclude_none=True, exclude={"customer_token"})
    record["timestamp"] = at.astimezone(UTC).isoformat()
    op: dict[str, Any] = {
        "visitor": event.visitor_id,
        "type": event.type.value,
        "ts": ts,
        "day": int(ts // SECONDS_PER_DAY),
        "record": orjson.dumps(record).decode(),
    }
    if event.event_id:
        op["event_id"] = event.event_id
    if event.customer_id:
        op["customer"] = event.customer_id
    lines = event.line_items()
    if lines and event_weight(event.type) > 0:
        op["recent"] = [encode_interaction(event.type.value, line.item_id, ts) for line in lines]
    if event.type is EventType.ADD_TO_CART:
        op["cart_add"] = quantities(lines)
    elif event.type is EventType.REMOVE_FROM_CART:
        op["cart_remove"] = quantities(lines)
    elif event.type is EventType.WISHLIST_ADD:
        op["wishlist"] = [line.item_id for line in lines]
    elif event.type is EventType.PURCHASE:
        op["purchase"] = {
            "items": [line.item_id for line in lines],
            "value": event.ledger_value(),
            # The ledger key: the order id, else the event id, else a fresh one.
            "order_key": event.ledger_key() or f"event:{uuid.uuid4().hex}",
        }
    elif event.type is EventType.RETURN_REQUESTED and event.order_id:
        op["returned"] = event.order_id
    elif event.type is EventType.SIGNUP and event.properties:
        referrer = event.properties.get("referred_by")
        if isinstance(referrer, str) and 0 < len(referrer) <= MAX_ID_LENGTH:
            op["referrer"] = referrer
    properties = event.properties or {}
    fields = CONSENT_FIELDS + (SIGNUP_FIELDS if event.type is EventType.SIGNUP else ())
    profile = {name: _flag(properties[name]) for name in fields if name in properties}
    if profile:
        op["profile"] = profile
    return op


class EventStore:
    """Writes validated events to Redis with the ingest script."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._settings = settings

    async def ingest(self, events: Sequence[Event], now: datetime | None = None) -> IngestResult:
        if not events:
            return IngestResult(0, 0)
        now = now or datetime.now(UTC)
        payload = {
            "templates": keys.PERSON_TEMPLATES,
            "link": keys.LINK_TEMPLATE,
            "segment": keys.SEGMENT_TEMPLATE,
            "people": keys.PEOPLE,
            "offer_stats": keys.OFFER_TEMPLATES["stats"],
            "stat_fields": keys.OFFER_STAT_FIELDS,
            "dedup": keys.DEDUP_TEMPLATE,
            "visitor_person": keys.VISITOR_PERSON,
            "customer_person": keys.CUSTOMER_PERSON,
            "stream": keys.EVENTS_STREAM,
            "stream_max_len": self._settings.stream_max_len,
            "recent_cap": self._settings.recent_interactions_cap,
            "touches_cap": TOUCHES_CAP,
            "buyers": keys.BUYERS_TEMPLATE,
            "new_buyers": keys.NEW_BUYERS_TEMPLATE,
            "month_totals": keys.MONTH_TOTALS_TEMPLATE,
            "dedup_ttl": self._settings.dedup_ttl_seconds,
            "ops": [event_op(event, now) for event in events],
        }
        accepted, duplicates, persons, new_orders = await self._script(args=[orjson.dumps(payload)])
        return IngestResult(
            int(accepted),
            int(duplicates),
            tuple(str(person) or None for person in persons),
            tuple(bool(int(flag)) for flag in new_orders),
        )


def quantities(lines: list[LineItem]) -> dict[str, int]:
    """Units per item, adding up repeated lines for the same item."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.item_id] = totals.get(line.item_id, 0) + line.quantity
    return totals


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)[:64]

"""The behaviour event: the one place that defines each event field and its limits.

The API validates requests with `Event`, the offline jobs read event files into the
same shape, and the field limits here are what keeps hostile input out of Redis.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 512
MAX_LINE_ITEMS = 200
MAX_PROPERTIES = 50
MAX_FUTURE_SKEW_SECONDS = 86_400.0
MAX_BLOB_DEPTH = 8
MAX_BLOB_BYTES = 16_384
INT64 = 2**63

Identifier = Annotated[
    str,
    # No control characters, and no braces: ids become part of Redis Cluster hash tags.
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00-\x1f\x7f{}]+$"),
]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]


def check_json_blob(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Free-form JSON (event properties, item attributes) that is safe to store and echo.

    Shallow enough to serialise, small, and made of finite numbers that fit in 64 bits.
    """
    if value is None:
        return None
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_BLOB_DEPTH:
            raise ValueError(f"nested deeper than {MAX_BLOB_DEPTH} levels")
        if isinstance(node, dict):
            pending.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node)
        elif isinstance(node, bool) or node is None or isinstance(node, str):
            continue
        elif isinstance(node, int) and not -INT64 <= node < INT64:
            raise ValueError("an integer does not fit in 64 bits")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("numbers must be finite")
    if len(orjson.dumps(value)) > MAX_BLOB_BYTES:
        raise ValueError(f"larger than {MAX_BLOB_BYTES} bytes as JSON")
    return value


JsonBlob = Annotated[dict[str, Any] | None, AfterValidator(check_json_blob)]


class EventType(StrEnum):
    VIEW = "view"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    WISHLIST_ADD = "wishlist_add"
    SEARCH = "search"
    REVIEW = "review"
    REC_IMPRESSION = "rec_impression"
    REC_CLICK = "rec_click"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    SIGNUP = "signup"
    SHIPMENT_DELAYED = "shipment_delayed"
    RETURN_REQUESTED = "return_requested"


# Event types that are about one product and so must name it.
ITEM_EVENT_TYPES = frozenset(
    {
        EventType.VIEW,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.WISHLIST_ADD,
        EventType.REVIEW,
        EventType.REC_CLICK,
    }
)


class LineItem(BaseModel):
    """One product line of a purchase (or a multi-item cart event)."""

    model_config = ConfigDict(extra="forbid")

    item_id: Identifier
    quantity: int = Field(default=1, ge=1, le=10_000)
    price: float = Field(default=0.0, ge=0, le=1e7, allow_inf_nan=False)


class Event(BaseModel):
    """A behaviour event exactly as the public contract defines it."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    event_id: Identifier | None = None
    type: EventType
    visitor_id: Identifier
    customer_id: Identifier | None = None
    timestamp: datetime | None = None
    item_id: Identifier | None = None
    items: list[LineItem] | None = Field(default=None, max_length=MAX_LINE_ITEMS)
    order_id: Identifier | None = None
    value: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")] | None = None
    category: Identifier | None = None
    query: Text | None = None
    recommendation_id: Identifier | None = None
    customer_token: Identifier | None = Field(
        default=None,
        description="with a public key, proof of customer_id: hex HMAC-SHA256 of the "
        "customer id with CUSTOMER_TOKEN_SECRET, made by the store's server at sign-in",
    )
    properties: JsonBlob = Field(default=None, max_length=MAX_PROPERTIES)

    @field_validator("timestamp")
    @classmethod
    def _aware_and_not_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            in_utc = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("timestamp is out of range") from None
        # Compared as epoch seconds: cheaper than aware datetimes, once per event.
        seconds = in_utc.timestamp()
        if seconds < 0:
            raise ValueError("timestamp is before 1970")
        if seconds > time.time() + MAX_FUTURE_SKEW_SECONDS:
            raise ValueError("timestamp is in the future")
        return in_utc

    @model_validator(mode="after")
    def _required_by_type(self) -> Event:
        if self.type in ITEM_EVENT_TYPES and self.item_id is None:
            raise ValueError(f"a {self.type.value} event needs item_id")
        if self.type is EventType.PURCHASE and not self.items and self.item_id is None:
            raise ValueError("a purchase event needs items or item_id")
        if self.type is EventType.REVIEW and self.value is not None and not 1 <= self.value <= 5:
            raise ValueError("a review's value is its stars, 1 to 5")
        return self

    def quantities(self) -> dict[str, int]:
        """Units per item, adding up repeated lines for the same item."""
        if not self.items:
            return {self.item_id: 1} if self.item_id is not None else {}
        totals: dict[str, int] = {}
        for line in self.items:
            totals[line.item_id] = totals.get(line.item_id, 0) + line.quantity
        return totals

    def item_ids(self) -> list[str]:
        """The ids of `line_items()`, without building a line for a lone `item_id`."""
        if self.items:
            return [line.item_id for line in self.items]
        return [self.item_id] if self.item_id is not None else []

    def line_items(self) -> list[LineItem]:
        """The products this event is about, whether given as `items` or `item_id`."""
        if self.items:
            return self.items
        if self.item_id is not None:
            return [LineItem(item_id=self.item_id)]
        return []

    def order_value(self) -> float:
        """What a purchase was worth: `value` if given, else the sum of its lines."""
        if self.value is not None:
            return self.value
        return sum(line.price * line.quantity for line in self.line_items())

    def ledger_value(self) -> float:
        """The order's value as the LTV ledger records it (to the cent)."""
        return round(self.order_value(), 2)

    def ledger_key(self) -> str | None:
        """Where the ledger files this order: its order id, else its event id."""
        if self.order_id:
            return self.order_id
        return f"event:{self.event_id}" if self.event_id else None

    def occurred_at(self, now: datetime) -> datetime:
        return self.timestamp if self.timestamp is not None else now

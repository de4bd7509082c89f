"""A person's live record as read from Redis: plain data for the pure rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from models.history import Interaction
from models.weights import SECONDS_PER_DAY
from state.keys import is_customer


@dataclass(frozen=True)
class Order:
    key: str
    value: float
    at: float  # seconds since the epoch
    returned: bool = False

    @classmethod
    def parse(cls, key: str, entry: str) -> Order:
        """A ledger entry "value|ts" or "value|ts|R" (returned)."""
        parts = entry.split("|")
        return cls(key, float(parts[0]), float(parts[1]), len(parts) > 2 and parts[2] == "R")


# The event types whose latest time a profile keeps, as "last:<type>": the ones a rule
# reads (campaigns/offers.py: cart recovery, the shipment apology). The apply script
# writes no others; `last_seen` covers every type.
TIMED_EVENT_TYPES = ("add_to_cart", "shipment_delayed")


@dataclass(frozen=True)
class PersonRecord:
    person: str  # "v:<visitor>" or "c:<customer>"
    profile: Mapping[str, str] = field(default_factory=dict)
    orders: Sequence[Order] = ()
    cart: Mapping[str, int] = field(default_factory=dict)
    wishlist: Sequence[str] = ()
    purchased: Sequence[str] = ()
    recent: Sequence[Interaction] | None = ()  # newest first; None: not read
    counts: Mapping[str, int] = field(default_factory=dict)  # "type:day" -> events
    segments: frozenset[str] = frozenset()  # as last stored

    @property
    def is_customer(self) -> bool:
        return is_customer(self.person)

    @property
    def kept_orders(self) -> list[Order]:
        return [order for order in self.orders if not order.returned]

    def number(self, name: str) -> float | None:
        value = self.profile.get(name)
        return float(value) if value is not None else None

    def last_time(self, event_type: str) -> float | None:
        """When the person last sent an event of a type in `TIMED_EVENT_TYPES`."""
        assert event_type in TIMED_EVENT_TYPES, f"the profile keeps no time for {event_type}"
        return self.number(f"last:{event_type}")

    def flag(self, name: str) -> bool | None:
        value = self.profile.get(name)
        return None if value is None else value == "1"

    def events_in_window(self, event_type: str, days: int, now: float) -> int:
        """Events of a type over the last `days` days, today included."""
        today = int(now // SECONDS_PER_DAY)
        return sum(
            self.counts.get(f"{event_type}:{day}", 0) for day in range(today - days + 1, today + 1)
        )

"""Reading a visitor's live state: the history ranking needs and the full profile.

An anonymous visitor costs one pipelined round trip; a visitor linked to a customer
costs a second one, for the customer's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from models.recommend import VisitorHistory
from state import keys
from state.interactions import decode_interaction

HISTORY_KINDS = ("recent", "purchased", "cart")
PROFILE_KINDS = ("profile", "recent", "purchased", "cart", "wishlist", "orders")


@dataclass(frozen=True)
class PersonState:
    person: str
    values: dict[str, Any]
    extras: tuple[Any, ...] = ()  # replies to the extra GETs, in order

    @property
    def exists(self) -> bool:
        return any(self.values.values())


async def read_person(
    redis: Redis, visitor_id: str, kinds: tuple[str, ...], extra_gets: tuple[str, ...] = ()
) -> PersonState:
    """Resolve the visitor's person (itself or its customer) and read `kinds` of its keys.

    `extra_gets` are plain keys read in the same first round trip (the catalog revision).
    """
    person = keys.visitor_person(visitor_id)
    pipe = redis.pipeline(transaction=False)
    for key in extra_gets:
        pipe.get(key)
    pipe.get(keys.link_key(visitor_id))
    _queue_reads(pipe, person, kinds)
    replies = await pipe.execute()
    extras, linked, values = (
        replies[: len(extra_gets)],
        replies[len(extra_gets)],
        replies[len(extra_gets) + 1 :],
    )
    if linked is not None:
        person = keys.customer_person(linked)
        pipe = redis.pipeline(transaction=False)
        _queue_reads(pipe, person, kinds)
        values = await pipe.execute()
    return PersonState(person, dict(zip(kinds, values, strict=True)), tuple(extras))


async def read_history(redis: Redis, visitor_id: str) -> VisitorHistory:
    state = await read_person(redis, visitor_id, HISTORY_KINDS)
    return history_from(state.values)


def history_from(values: dict[str, Any]) -> VisitorHistory:
    """Ranking's view of a person; interactions oldest first."""
    return VisitorHistory(
        interactions=[decode_interaction(entry) for entry in reversed(values["recent"])],
        purchased=frozenset(item for item in values["purchased"]),
        cart=[item for item in values["cart"]],
    )


async def read_profile(redis: Redis, visitor_id: str) -> dict[str, Any] | None:
    """The live profile as the API shows it, or None for a visitor never seen."""
    state = await read_person(redis, visitor_id, PROFILE_KINDS)
    if not state.exists:
        return None
    fields = {k: v for k, v in state.values["profile"].items()}
    history = history_from(state.values)
    order_values = [float(value) for value in state.values["orders"].values()]
    orders = len(order_values)
    ltv = round(sum(order_values), 2)
    return {
        "visitor_id": visitor_id,
        "customer_id": fields.get("customer_id"),
        "person": state.person,
        "orders": orders,
        "lifetime_value": ltv,
        "average_order_value": round(ltv / orders, 2) if orders else 0.0,
        "first_seen": _float_or_none(fields.get("first_seen")),
        "last_seen": _float_or_none(fields.get("last_seen")),
        "last_order_at": _float_or_none(fields.get("last_order_at")),
        "last_order_id": fields.get("last_order_id"),
        "events": int(fields.get("events", 0)),
        "email_opt_in": _flag_or_none(fields.get("email_opt_in")),
        "sms_opt_in": _flag_or_none(fields.get("sms_opt_in")),
        "birthday": fields.get("birthday"),
        "cart": {k: int(v) for k, v in state.values["cart"].items()},
        "wishlist": sorted(i for i in state.values["wishlist"]),
        "purchased": sorted(history.purchased),
        "recent_items": [
            {"item_id": x.item_id, "type": x.event_type, "timestamp": x.timestamp}
            for x in reversed(history.interactions)
        ],
    }


def _queue_reads(pipe: Any, person: str, kinds: tuple[str, ...]) -> None:
    readers = {
        "profile": pipe.hgetall,
        "recent": lambda key: pipe.lrange(key, 0, -1),
        "purchased": pipe.smembers,
        "cart": pipe.hgetall,
        "wishlist": pipe.smembers,
        "orders": pipe.hgetall,
    }
    for kind in kinds:
        readers[kind](keys.person_key(kind, person))


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value is not None else None


def _flag_or_none(value: str | None) -> bool | None:
    return None if value is None else value == "1"

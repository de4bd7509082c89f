"""Reading a visitor's live state: the history ranking needs and the full profile.

An anonymous visitor costs one pipelined round trip; a visitor linked to a customer
costs a second one, for the customer's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from campaigns.person import Order, PersonRecord
from models.recommend import VisitorHistory
from state import keys
from state.interactions import decode_interaction

HISTORY_KINDS = ("recent", "purchased", "cart")
PROFILE_KINDS = (
    "profile", "recent", "purchased", "cart", "wishlist", "orders", "counts", "segments"
)  # fmt: skip


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


async def read_record(redis: Redis, visitor_id: str) -> PersonRecord | None:
    """Everything held about the visitor's person, or None for a visitor never seen."""
    state = await read_person(redis, visitor_id, PROFILE_KINDS)
    if not state.exists:
        return None
    values = state.values
    return PersonRecord(
        person=state.person,
        profile=dict(values["profile"]),
        orders=[Order.parse(key, entry) for key, entry in values["orders"].items()],
        cart={item: int(quantity) for item, quantity in values["cart"].items()},
        wishlist=sorted(values["wishlist"]),
        purchased=sorted(values["purchased"]),
        recent=[decode_interaction(entry) for entry in values["recent"]],
        counts={name: int(count) for name, count in values["counts"].items()},
        segments=frozenset(values["segments"]),
    )


def _queue_reads(pipe: Any, person: str, kinds: tuple[str, ...]) -> None:
    readers = {
        "profile": pipe.hgetall,
        "recent": lambda key: pipe.lrange(key, 0, -1),
        "purchased": pipe.smembers,
        "cart": pipe.hgetall,
        "wishlist": pipe.smembers,
        "orders": pipe.hgetall,
        "counts": pipe.hgetall,
        "segments": pipe.smembers,
    }
    for kind in kinds:
        readers[kind](keys.person_key(kind, person))

"""Reading a visitor's live state: the history ranking needs and the full profile.

One script call per read, whoever the visitor is: it resolves the visitor -> customer
link and reads the person's keys server-side, so a request pays one round trip and one
command, not two round trips of a dozen commands each.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from campaigns.person import Order, PersonRecord
from models.history import VisitorHistory
from state import keys
from state.interactions import decode_interaction
from state.offers import STAT_FIELDS, RedemptionCounts

_SCRIPT = resources.files("state").joinpath("read.lua").read_text()
READERS = {
    "profile": "hash", "recent": "list", "purchased": "set", "cart": "hash",
    "wishlist": "set", "orders": "hash", "counts": "hash", "segments": "set",
}  # fmt: skip
HISTORY_KINDS = ("recent", "purchased", "cart")
PROFILE_KINDS = tuple(READERS)  # everything held about a person


@dataclass(frozen=True)
class PersonState:
    person: str
    values: dict[str, Any]
    extras: tuple[Any, ...] = ()  # replies to the extra GETs, in order
    fields: tuple[tuple[str | None, ...], ...] = ()  # replies to the field reads, in order

    @property
    def exists(self) -> bool:
        return any(self.values.values())


class PersonReader:
    """Reads persons with the read script; one instance per Redis client."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._arguments: dict[tuple[Any, ...], bytes] = {}

    async def read(
        self,
        visitor_id: str,
        kinds: tuple[str, ...],
        extra_gets: tuple[str, ...] = (),
        fields: tuple[tuple[str, ...], ...] = (),
    ) -> PersonState:
        """Resolve the visitor's person (itself or its customer) and read `kinds` of it.

        `extra_gets` are plain keys read in the same call (the catalog revision);
        `fields` are (hash key, field template...) where "%s" in a field is the person.
        """
        arguments = self._arguments.get((kinds, extra_gets, fields))
        if arguments is None:
            arguments = orjson.dumps(
                {
                    "templates": {kind: keys.PERSON_TEMPLATES[kind] for kind in kinds},
                    "visitor_person": keys.VISITOR_PERSON,
                    "customer_person": keys.CUSTOMER_PERSON,
                    "kinds": [[kind, READERS[kind]] for kind in kinds],
                    "extras": list(extra_gets),
                    "fields": [list(spec) for spec in fields],
                }
            )
            self._arguments[(kinds, extra_gets, fields)] = arguments
        person, replies, extras, field_replies = await self._script(
            keys=[keys.link_key(visitor_id)], args=[visitor_id, arguments]
        )
        values = {
            kind: _pairs(reply) if READERS[kind] == "hash" else reply
            for kind, reply in zip(kinds, replies, strict=True)
        }
        return PersonState(
            person,
            values,
            tuple(extra or None for extra in extras),
            tuple(tuple(value or None for value in reply) for reply in field_replies),
        )


def history_from(values: dict[str, Any]) -> VisitorHistory:
    """Ranking's view of a person; interactions oldest first."""
    return VisitorHistory(
        interactions=[decode_interaction(entry) for entry in reversed(values["recent"])],
        purchased=frozenset(item for item in values["purchased"]),
        cart=[item for item in values["cart"]],
    )


async def read_record(
    reader: PersonReader, visitor_id: str, offer_ids: tuple[str, ...] = ()
) -> tuple[PersonRecord, RedemptionCounts] | None:
    """Everything held about the visitor's person, with their redemptions of `offer_ids`;
    None for a visitor never seen."""
    stats = tuple((keys.offer_key("stats", o), *STAT_FIELDS) for o in offer_ids)
    state = await reader.read(visitor_id, PROFILE_KINDS, fields=stats)
    if not state.exists:
        return None
    values = state.values
    counts = RedemptionCounts()
    for offer_id, replies in zip(offer_ids, state.fields, strict=True):
        counts.add(offer_id, replies)
    record = PersonRecord(
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
    return record, counts


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))

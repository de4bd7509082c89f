"""Reading a visitor's live state: the history ranking needs and the full profile.

An anonymous visitor costs one round trip: a pipeline holding the read script (which
checks the visitor's customer link and reads its keys server-side) and the plain reads
that came with it. A visitor linked to a customer costs a second one, for the customer's
keys in the customer's hash slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from campaigns.person import Order, PersonRecord
from models.history import VisitorHistory
from state import keys
from state.interactions import decode_interactions
from state.multiplex import Command, Lanes
from state.offers import STAT_FIELDS, RedemptionCounts
from state.slots import execute, script_and_reads, script_each

READ_SCRIPT = resources.files("state").joinpath("read.lua").read_text()
READERS = {
    "profile": "hash", "recent": "list", "purchased": "set", "cart": "hash",
    "wishlist": "set", "orders": "hash", "counts": "hash", "segments": "set",
}  # fmt: skip
HISTORY_KINDS = ("recent", "purchased", "cart")
PROFILE_KINDS = tuple(READERS)  # everything held about a person
# The same without the recent list, for evaluations that need none of its facts.
PROFILE_KINDS_BUT_RECENT = tuple(kind for kind in PROFILE_KINDS if kind != "recent")


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

    def __init__(self, redis: Redis, lanes: Lanes | None = None) -> None:
        self._redis = redis
        # Where given, the multiplexed connections carry the reads (state/multiplex.py):
        # one person's on one, many people's on the other.
        self._single = lanes.single if lanes else None
        self._bulk = lanes.bulk if lanes else None
        self._script = redis.register_script(READ_SCRIPT)
        self._arguments: dict[tuple[str, ...], bytes] = {}

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
        arguments = self._arguments_for(kinds)
        person = keys.visitor_person(visitor_id)
        replies = await self._read_slot(
            keys.link_key(visitor_id), person, "visitor", arguments, extra_gets, fields
        )
        linked, values = replies[0]
        extras = replies[1 : 1 + len(extra_gets)]
        if linked:
            person = keys.customer_person(linked)
            replies = await self._read_slot(
                keys.person_key("profile", person), person, "person", arguments, (), fields
            )
            values = replies[0][1]
        return _state(
            person,
            kinds,
            values,
            tuple(extra or None for extra in extras),
            tuple(_present(reply) for reply in replies[len(replies) - len(fields) :]),
        )

    async def read_many(
        self,
        visitor_ids: Sequence[str],
        kinds: tuple[str, ...],
        fields: tuple[tuple[str, ...], ...] = (),
    ) -> list[PersonState]:
        """`read` for many visitors in two round trips in all, not one or two each:
        every visitor's own slot first, then the customers that linked visitors turned
        out to be, beside the field reads for everyone."""
        arguments = self._arguments_for(kinds)
        first = await script_each(
            self._redis,
            self._script,
            [
                ([keys.link_key(v)], [keys.visitor_person(v), "visitor", arguments])
                for v in visitor_ids
            ],
            self._bulk,
        )
        persons = [
            keys.customer_person(linked) if linked else keys.visitor_person(visitor)
            for visitor, (linked, _) in zip(visitor_ids, first, strict=True)
        ]
        linked_at = [index for index, (linked, _) in enumerate(first) if linked]
        calls = [
            ([keys.person_key("profile", persons[i])], [persons[i], "person", arguments])
            for i in linked_at
        ]
        second, field_replies = await asyncio.gather(
            script_each(self._redis, self._script, calls, self._bulk),
            self._read_fields(persons, fields),
        )
        values = [reply[1] for reply in first]
        for index, reply in zip(linked_at, second, strict=True):
            values[index] = reply[1]
        return [
            _state(person, kinds, person_values, (), person_fields)
            for person, person_values, person_fields in zip(
                persons, values, field_replies, strict=True
            )
        ]

    async def _read_fields(
        self, persons: list[str], fields: tuple[tuple[str, ...], ...]
    ) -> list[tuple[tuple[str | None, ...], ...]]:
        """Each person's field reads (see `read`), in one round trip for all of them."""
        if not fields:
            return [()] * len(persons)
        reads = [command for person in persons for command in _field_reads(person, fields)]
        replies = await execute(self._redis, reads, self._bulk)
        per_person = len(fields)
        return [
            tuple(_present(reply) for reply in replies[n * per_person : (n + 1) * per_person])
            for n in range(len(persons))
        ]

    def _arguments_for(self, kinds: tuple[str, ...]) -> bytes:
        arguments = self._arguments.get(kinds)
        if arguments is None:
            arguments = orjson.dumps(
                {
                    "templates": {kind: keys.PERSON_TEMPLATES[kind] for kind in kinds},
                    "kinds": [[kind, READERS[kind]] for kind in kinds],
                }
            )
            self._arguments[kinds] = arguments
        return arguments

    async def _read_slot(
        self,
        slot_key: str,
        person: str,
        mode: str,
        arguments: bytes,
        extra_gets: tuple[str, ...],
        fields: tuple[tuple[str, ...], ...],
    ) -> list[Any]:
        """Read one person's slot: the read script's reply, then the extra GETs' and the
        field reads' (which travel with it)."""

        reads = [("GET", key) for key in extra_gets] + _field_reads(person, fields)
        reply, replies = await script_and_reads(
            self._redis, self._script, [slot_key], [person, mode, arguments], reads, self._single
        )
        return [reply, *replies]


def history_from(values: dict[str, Any]) -> VisitorHistory:
    """Ranking's view of a person; interactions oldest first."""
    return VisitorHistory(
        interactions=decode_interactions(values["recent"])[::-1],
        purchased=frozenset(item for item in values["purchased"]),
        cart=[item for item in values["cart"]],
    )


async def read_record(
    reader: PersonReader, visitor_id: str, offer_ids: tuple[str, ...] = ()
) -> tuple[PersonRecord, RedemptionCounts] | None:
    """Everything held about the visitor's person, with their redemptions of `offer_ids`;
    None for a visitor never seen."""
    state = await reader.read(visitor_id, PROFILE_KINDS, fields=_offer_stats(offer_ids))
    return _record(state, offer_ids)


async def read_records(
    reader: PersonReader,
    visitor_ids: Sequence[str],
    offer_ids: tuple[str, ...] = (),
    with_recent: bool = True,
) -> list[tuple[PersonRecord, RedemptionCounts] | None]:
    """`read_record` for many visitors, in two round trips in all; without their recent
    lists (`PersonRecord.recent` None) unless `with_recent`."""
    kinds = PROFILE_KINDS if with_recent else PROFILE_KINDS_BUT_RECENT
    states = await reader.read_many(visitor_ids, kinds, fields=_offer_stats(offer_ids))
    return [_record(state, offer_ids) for state in states]


def _offer_stats(offer_ids: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple((keys.offer_key("stats", o), *STAT_FIELDS) for o in offer_ids)


def _record(
    state: PersonState, offer_ids: tuple[str, ...]
) -> tuple[PersonRecord, RedemptionCounts] | None:
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
        recent=decode_interactions(values["recent"]) if "recent" in values else None,
        counts={name: int(count) for name, count in values["counts"].items()},
        segments=frozenset(values["segments"]),
    )
    return record, counts


def _state(
    person: str,
    kinds: tuple[str, ...],
    values: list[Any],
    extras: tuple[Any, ...],
    fields: tuple[tuple[str | None, ...], ...],
) -> PersonState:
    return PersonState(
        person,
        {
            kind: _pairs(reply) if READERS[kind] == "hash" else reply
            for kind, reply in zip(kinds, values, strict=True)
        },
        extras,
        fields,
    )


def _field_reads(person: str, fields: tuple[tuple[str, ...], ...]) -> list[Command]:
    """One HMGET per (hash key, field template...), the fields named for `person`."""
    return [
        ("HMGET", hash_key, *(_naming(template, person) for template in templates))
        for hash_key, *templates in fields
    ]


def _present(values: list[str | None]) -> tuple[str | None, ...]:
    """A field read's values, empty ones as None."""
    return tuple(value or None for value in values)


def _naming(template: str, person: str) -> str:
    """A field name, with the person in it where the template has a place for one."""
    return template % person if "%s" in template else template


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))

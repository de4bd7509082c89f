"""Linking a visitor to the customer it turned out to be.

A visitor's keys live in its own hash slot and the customer's in another, so the merge
is a sequence of slot-local steps:

1. point the visitor at the customer and mark it "merging" (its slot, one transaction):
   from here on every event for the visitor goes to the customer, and the apply script
   turns away any that resolved the visitor before this instant;
2. read the visitor's state (its slot): nothing can be added to it any more;
3. fold it into the customer (the customer's slot, `absorb.lua`): the visitor joining
   the customer's visitor set guards the fold, so a resumed merge folds nothing twice;
4. move the cross-person entries: segment sets, month buyer sets, offer
   counters (each move idempotent);
5. drop the visitor's keys and the mark (its slot, one transaction).

A merge cut short leaves the mark, and the next request naming the visitor resumes it
from step 2. Journey steps already scheduled for the visitor keep their keys and are
still sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from campaigns.person import Order
from campaigns.retention import month_of
from state import keys
from state.interactions import LUA_TYPE_CODES
from state.scripts import lua
from state.slots import per_slot, script_each
from state.visitors import READ_SCRIPT

_ABSORB = lua("fields.lua", "windows.lua", "recent.lua", "absorb.lua")
_GET_EACH = (
    "local out = {} for i, k in ipairs(KEYS) do out[i] = redis.call('GET', k) or '' end return out"
)
# What the fold takes from a visitor, and how each kind is read.
VISITOR_STATE = {
    "profile": "hash", "recent": "list", "touches": "list", "cart": "hash",
    "wishlist": "set", "purchased": "set", "orders": "hash", "counts": "hash",
    "redeemed": "set", "segments": "set", "seen": "zset", "unlogged": "hash",
}  # fmt: skip
_STATE_READ = orjson.dumps(
    {
        "templates": {kind: keys.PERSON_TEMPLATES[kind] for kind in VISITOR_STATE},
        "kinds": list(VISITOR_STATE.items()),
    }
)
# Kept on the visitor: journey steps scheduled for it are claimed and sent under it.
JOURNEY_KINDS = ("journeys", "sent", "sending", "messages")
# Step 1 of a merge, atomic: link the visitor and mark it merging (both in its slot).
# KEYS: the link, the mark. ARGV: the customer.
_START_MERGE = "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[1])"
# What a finished merge deletes of the visitor.
DROPPED_KINDS = tuple(kind for kind in keys.PERSON_TEMPLATES if kind not in JOURNEY_KINDS)
# Kinds the fold writes on the customer's side.
ABSORB_KINDS = (*VISITOR_STATE, "visitors")
PERSON_STAT_FIELDS = ("count", "points", "period")
# Move one person's redemption counters to another within an offer's stats hash, at once.
# KEYS: the stats hash. ARGV: the source's count, points, period fields, then the target's.
_MOVE_STATS = """
local count = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
if count > 0 then redis.call('HINCRBY', KEYS[1], ARGV[4], count) end
local points = tonumber(redis.call('HGET', KEYS[1], ARGV[2])) or 0
if points > 0 then redis.call('HINCRBY', KEYS[1], ARGV[5], points) end
local period = redis.call('HGET', KEYS[1], ARGV[3])
if period then redis.call('HSETNX', KEYS[1], ARGV[6], period) end
redis.call('HDEL', KEYS[1], ARGV[1], ARGV[2], ARGV[3])
"""


async def read_links(redis: Redis, visitors: Iterable[str]) -> dict[str, str | None]:
    """Visitor id -> the customer id it is linked to, or None."""
    links, _ = await read_links_and_merges(redis, visitors)
    return links


async def read_links_and_merges(
    redis: Redis, visitors: Iterable[str]
) -> tuple[dict[str, str | None], dict[str, str]]:
    """The visitors' links, and the merges into a customer left unfinished: one script
    call per slot rather than two GETs a visitor, which a batch of a thousand events
    would pay for in parsing."""
    visitors = list(dict.fromkeys(visitors))
    names = [keys.link_key(v) for v in visitors] + [keys.merging_key(v) for v in visitors]
    found = await per_slot(redis, redis.register_script(_GET_EACH), names)
    links = {v: link or None for v, link in zip(visitors, found[: len(visitors)], strict=True)}
    merging = {v: m for v, m in zip(visitors, found[len(visitors) :], strict=True) if m}
    return links, merging


class Linker:
    """Links visitors to customers; one instance per Redis client."""

    def __init__(self, redis: Redis, recent_cap: int, touches_cap: int, dedup_ttl: int) -> None:
        self._redis = redis
        self._absorb = redis.register_script(_ABSORB)
        self._start = redis.register_script(_START_MERGE)
        self._read = redis.register_script(READ_SCRIPT)
        self._move_stats = redis.register_script(_MOVE_STATS)
        self._caps = {"recent_cap": recent_cap, "touches_cap": touches_cap, "dedup_ttl": dedup_ttl}

    async def link_all(self, steps: Sequence[tuple[str, str | None, str]]) -> None:
        """Make each (visitor, current link, customer) step's customer the visitor's
        person from now on; a visitor appears once. The batch's merges take each step
        together: a round trip per step for all of them, not per visitor."""
        if not steps:
            return
        merges = {visitor: customer for visitor, linked, customer in steps if linked is None}
        moves = self._redis.pipeline(transaction=False)
        for visitor, linked, customer in steps:
            if linked is not None:
                # A visitor moving to another customer takes nothing along; the old
                # customer no longer reaches it.
                moves.srem(keys.person_key("visitors", keys.customer_person(linked)), visitor)
                moves.set(keys.link_key(visitor), customer)
                moves.sadd(keys.person_key("visitors", keys.customer_person(customer)), visitor)
        starts = [
            ([keys.link_key(visitor), keys.merging_key(visitor)], [customer])
            for visitor, customer in merges.items()
        ]
        await asyncio.gather(moves.execute(), script_each(self._redis, self._start, starts))
        await self.finish_merges(merges)

    async def finish_merges(self, merges: dict[str, str]) -> None:
        """Steps 2-5 for each visitor -> customer: fold the (now frozen) visitors into
        their customers and drop them."""
        if not merges:
            return
        pairs = [(keys.visitor_person(v), keys.customer_person(c)) for v, c in merges.items()]
        states = await self._read_states([source for source, _ in pairs])
        calls = [
            ([keys.person_key("profile", target)], [self._absorb_arguments(visitor, target, state)])
            for visitor, (_, target), state in zip(merges, pairs, states, strict=True)
        ]
        ledgers = await script_each(self._redis, self._absorb, calls)
        await self._move_shared(pairs, states, ledgers)
        drop = self._redis.pipeline(transaction=False)
        for visitor, (source, _) in zip(merges, pairs, strict=True):
            # One DEL per visitor, atomic: its keys and the mark share its slot.
            drop.delete(
                *(keys.person_key(k, source) for k in DROPPED_KINDS), keys.merging_key(visitor)
            )
        await drop.execute()

    async def _move_shared(
        self, pairs: list[tuple[str, str]], states: list[dict[str, Any]], ledgers: list[Any]
    ) -> None:
        """Step 4 for every (visitor, customer) pair: segments, month buyer
        sets, offer counters. Two visitors of one customer may fold in either order
        (side by side on a cluster), so the customer's new-buyer month comes from every
        ledger the folds returned."""
        merged: dict[str, dict[str, Order]] = {}
        for (_, target), ledger in zip(pairs, ledgers, strict=True):
            merged.setdefault(target, {}).update((o.key, o) for o in _orders(ledger))
        shared = self._redis.pipeline(transaction=False)
        for (source, target), state in zip(pairs, states, strict=True):
            _queue_source_moves(shared, source, target, state)
        for target, orders in merged.items():
            _queue_new_buyer_month(shared, target, list(orders.values()))
        await shared.execute()
        await asyncio.gather(
            *(
                self._move_redemptions(source, target, state["redeemed"])
                for (source, target), state in zip(pairs, states, strict=True)
                if state["redeemed"]
            )
        )

    async def _read_states(self, persons: list[str]) -> list[dict[str, Any]]:
        """Every kind the fold takes, per person (one read script call each, all in one
        round trip); hashes and zsets as flat [name, value, ...] lists."""
        calls = [
            ([keys.person_key("profile", person)], [person, "person", _STATE_READ])
            for person in persons
        ]
        return [
            {
                kind: sorted(values) if reader == "set" else list(values)
                for (kind, reader), values in zip(VISITOR_STATE.items(), reply[1], strict=True)
            }
            for reply in await script_each(self._redis, self._read, calls)
        ]

    def _absorb_arguments(self, visitor: str, target: str, state: dict[str, Any]) -> bytes:
        return orjson.dumps(
            {
                "templates": {kind: keys.PERSON_TEMPLATES[kind] for kind in ABSORB_KINDS},
                "visitor": visitor,
                "person": target,
                "state": state,
                "type_codes": LUA_TYPE_CODES,
                **self._caps,
            }
        )

    async def _move_redemptions(self, source: str, target: str, offers: list[str]) -> None:
        """Offer caps and spent points follow the visitor into the customer."""
        fields = [keys.OFFER_STAT_FIELDS[name] for name in PERSON_STAT_FIELDS]
        names = [field % source for field in fields] + [field % target for field in fields]
        await asyncio.gather(
            *(
                self._move_stats(keys=[keys.offer_key("stats", offer)], args=names)
                for offer in offers
            )
        )


def _queue_source_moves(pipe: Pipeline, source: str, target: str, state: dict[str, Any]) -> None:
    """The visitor leaves its segments and its month buyer sets, where the customer
    takes its place."""
    for name in state["segments"]:
        pipe.srem(keys.segment_key(name), source)
    for month in {month_of(order.at) for order in _orders(state["orders"])}:
        pipe.srem(keys.buyers_key(month), source)
        pipe.srem(keys.new_buyers_key(month), source)
        pipe.sadd(keys.buyers_key(month), target)


def _queue_new_buyer_month(pipe: Pipeline, target: str, merged: list[Order]) -> None:
    """From the merged ledger: the customer is new in the month of its earliest order
    and in no other."""
    months = sorted({month_of(order.at) for order in merged})
    for month in months[1:]:
        pipe.srem(keys.new_buyers_key(month), target)
    if months:
        pipe.sadd(keys.new_buyers_key(months[0]), target)


def _orders(flat: list[str]) -> list[Order]:
    return [Order.parse(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

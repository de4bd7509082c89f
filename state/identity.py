"""Linking a visitor to the customer it turned out to be.

A visitor's keys live in its own hash slot and the customer's in another, so the merge
is a sequence of slot-local steps, each safe to run again after a failure:

1. read the visitor's state (its slot);
2. fold it into the customer (the customer's slot, `absorb.lua`): the visitor joining
   the customer's visitor set guards the fold, so a retried merge folds nothing twice;
3. point the visitor at the customer and drop its keys (its slot, one transaction);
4. move the cross-person entries: segment sets, everyone, month buyer sets, offer stats.

Events that arrive for the visitor between steps 1 and 3 reach the stream but not the
customer's profile; the window is one request long and only at the moment of login.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from campaigns.person import Order
from campaigns.retention import month_of
from state import keys
from state.slots import per_slot

_ABSORB = resources.files("state").joinpath("absorb.lua").read_text()
_GET_EACH = (
    "local out = {} for i, k in ipairs(KEYS) do out[i] = redis.call('GET', k) or '' end return out"
)
# What the fold takes from a visitor, and how each kind is read.
VISITOR_STATE = {
    "profile": "hash", "recent": "list", "touches": "list", "cart": "hash",
    "wishlist": "set", "purchased": "set", "orders": "hash", "counts": "hash",
    "redeemed": "set", "segments": "set", "seen": "zset",
}  # fmt: skip
# Kinds the fold writes on the customer's side.
ABSORB_KINDS = (*VISITOR_STATE, "visitors")
PERSON_STAT_FIELDS = ("count", "points", "period")


async def read_links(redis: Redis, visitors: Iterable[str]) -> dict[str, str | None]:
    """Visitor id -> the customer id it is linked to, or None: one script call per slot
    rather than a GET each, which a batch of a thousand events would pay for in parsing."""
    visitors = list(dict.fromkeys(visitors))
    script = redis.register_script(_GET_EACH)
    found = await per_slot(redis, script, [keys.link_key(visitor) for visitor in visitors])
    return {visitor: link or None for visitor, link in zip(visitors, found, strict=True)}


class Linker:
    """Links visitors to customers; one instance per Redis client."""

    def __init__(self, redis: Redis, recent_cap: int, touches_cap: int) -> None:
        self._redis = redis
        self._absorb = redis.register_script(_ABSORB)
        self._caps = {"recent_cap": recent_cap, "touches_cap": touches_cap}

    async def link(self, visitor: str, linked: str | None, customer: str) -> None:
        """Make `customer` the visitor's person from now on."""
        if linked is None:
            await self._merge(visitor, customer)
            return
        # A visitor moving to another customer takes nothing along; the old customer
        # no longer reaches it.
        pipe = self._redis.pipeline(transaction=False)
        pipe.srem(keys.person_key("visitors", keys.customer_person(linked)), visitor)
        pipe.set(keys.link_key(visitor), customer)
        pipe.sadd(keys.person_key("visitors", keys.customer_person(customer)), visitor)
        await pipe.execute()

    async def _merge(self, visitor: str, customer: str) -> None:
        source, target = keys.visitor_person(visitor), keys.customer_person(customer)
        state = await read_state(self._redis, source)
        arguments = {
            "templates": {kind: keys.PERSON_TEMPLATES[kind] for kind in ABSORB_KINDS},
            "visitor": visitor,
            "person": target,
            "state": state,
            **self._caps,
        }
        _, ledger = await self._absorb(
            keys=[keys.person_key("profile", target)], args=[orjson.dumps(arguments)]
        )
        finish = self._redis.pipeline(transaction=True)
        finish.set(keys.link_key(visitor), customer)
        finish.delete(*(keys.person_key(kind, source) for kind in keys.PERSON_TEMPLATES))
        await finish.execute()
        await self._move_shared_entries(source, target, state, _orders(ledger))

    async def _move_shared_entries(
        self, source: str, target: str, state: dict[str, Any], before: list[Order]
    ) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for name in state["segments"]:
            pipe.srem(keys.segment_key(name), source)
        pipe.srem(keys.PEOPLE, source)
        mine = _orders(state["orders"])
        for month in {month_of(order.at) for order in mine}:
            pipe.srem(keys.buyers_key(month), source)
            pipe.sadd(keys.buyers_key(month), target)
        first, theirs = _first_month(mine), _first_month(before)
        if first is not None:
            # The customer is new in the month of the earlier of the two first orders:
            # retention never counts one person twice.
            pipe.srem(keys.new_buyers_key(first), source)
            if theirs is None or first < theirs:
                if theirs is not None:
                    pipe.srem(keys.new_buyers_key(theirs), target)
                pipe.sadd(keys.new_buyers_key(first), target)
        await pipe.execute()
        await self._move_redemptions(source, target, state["redeemed"])

    async def _move_redemptions(self, source: str, target: str, offers: list[str]) -> None:
        """Offer caps and spent points follow the visitor into the customer."""
        if not offers:
            return
        fields = {name: keys.OFFER_STAT_FIELDS[name] for name in PERSON_STAT_FIELDS}
        read = self._redis.pipeline(transaction=False)
        for offer in offers:
            read.hmget(keys.offer_key("stats", offer), [f % source for f in fields.values()])
        replies = await read.execute()
        write = self._redis.pipeline(transaction=False)
        for offer, (count, points, period) in zip(offers, replies, strict=True):
            stats = keys.offer_key("stats", offer)
            if int(count or 0):
                write.hincrby(stats, fields["count"] % target, int(count))
            if int(points or 0):
                write.hincrby(stats, fields["points"] % target, int(points))
            if period:
                write.hsetnx(stats, fields["period"] % target, period)
            write.hdel(stats, *(f % source for f in fields.values()))
        await write.execute()


async def read_state(redis: Redis, person: str) -> dict[str, Any]:
    """Every kind the fold takes, hashes and zsets as flat [name, value, ...] lists."""
    pipe = redis.pipeline(transaction=False)
    for kind, reader in VISITOR_STATE.items():
        name = keys.person_key(kind, person)
        if reader == "hash":
            pipe.hgetall(name)
        elif reader == "list":
            pipe.lrange(name, 0, -1)
        elif reader == "set":
            pipe.smembers(name)
        else:
            pipe.zrange(name, 0, -1, withscores=True)
    state: dict[str, Any] = {}
    for (kind, reader), reply in zip(VISITOR_STATE.items(), await pipe.execute(), strict=True):
        if reader == "hash":
            state[kind] = [part for pair in reply.items() for part in pair]
        elif reader == "zset":
            state[kind] = [part for member, score in reply for part in (member, score)]
        else:
            state[kind] = sorted(reply) if reader == "set" else list(reply)
    return state


def _orders(flat: list[str]) -> list[Order]:
    return [Order.parse(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _first_month(orders: list[Order]) -> str | None:
    return month_of(min(order.at for order in orders)) if orders else None

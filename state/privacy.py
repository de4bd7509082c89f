"""Data-subject requests: everything held about a person, and erasing all of it.

A visitor id reaches a person: the anonymous visitor, the customer it was linked to and
every other visitor linked to that customer. Their keys all carry the person's hash tag;
what sits outside it (segment and retention sets, offer redemptions, the schedule, the
behaviour and outbox streams, pinned email answers) is found from the person's own keys
or by scanning. Erasure is rare and thorough rather than fast: it reads the streams
whole, about a second per million entries here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis

from campaigns.delivery import parse_retry_entry
from campaigns.experiments import PLACEMENTS
from state import keys, logged_events
from state.identity import read_links
from state.interactions import decode_interactions
from state.streams import stream_entries

STREAMS = (keys.EVENTS_STREAM, keys.OUTBOX_STREAM, keys.DELIVERY_DEAD)
PERSON_STAT_FIELDS = [(n, f) for n, f in keys.OFFER_STAT_FIELDS.items() if n != "total"]


@dataclass(frozen=True)
class Footprint:
    visitors: frozenset[str]
    customers: frozenset[str] = field(default_factory=frozenset)

    @property
    def persons(self) -> list[str]:
        return sorted(
            [keys.visitor_person(v) for v in self.visitors]
            + [keys.customer_person(c) for c in self.customers]
        )


def digest(identifier: str, secret: str) -> str:
    """Keyed, so that a list of erased ids cannot be recovered by hashing guesses."""
    return hmac.new(secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


async def footprint(redis: Redis, visitor_id: str) -> Footprint:
    link = await redis.get(keys.link_key(visitor_id))
    if link is None:
        return Footprint(frozenset({visitor_id}))
    customer = str(link)
    listed = sorted(
        map(str, await redis.smembers(keys.person_key("visitors", keys.customer_person(customer))))
    )
    # Only visitors still linked here: one that signed in as someone else since is theirs.
    links = await read_links(redis, listed)
    linked = {v for v in listed if links[v] == customer}
    return Footprint(frozenset({visitor_id, *linked}), frozenset({customer}))


async def holds_anything(redis: Redis, found: Footprint) -> bool:
    pipe = redis.pipeline(transaction=False)
    for person in found.persons:
        pipe.exists(*(keys.person_key(kind, person) for kind in keys.PERSON_TEMPLATES))
    return any(await pipe.execute())


async def export(redis: Redis, found: Footprint) -> dict[str, Any]:
    """Every key of every person, their events and the messages addressed to them."""
    persons = {person: await _dump_person(redis, person) for person in found.persons}
    events: list[dict[str, Any]] = []
    messages: list[dict[str, str]] = []
    async for entries in stream_entries(redis, keys.EVENTS_STREAM):
        events += [
            logged_events.decode(f).row for _, f in entries if logged_events.person_of(f) in persons
        ]
    for stream in (keys.OUTBOX_STREAM, keys.DELIVERY_DEAD):
        async for entries in stream_entries(redis, stream):
            messages.extend(f for _, f in entries if f.get("recipient") in persons)
    return {
        "visitors": sorted(found.visitors),
        "customers": sorted(found.customers),
        "persons": persons,
        "events": events,
        "messages": messages,
    }


async def erase(redis: Redis, found: Footprint, secret: str) -> dict[str, int]:
    """Remove every trace; returns how many keys and stream entries went.

    The erased ids are recorded first, so that exports skip them even if this is cut
    short; and the sweep runs twice, so that an event that arrived during the first
    (the storefront may still be sending) is taken too.
    """
    await redis.sadd(keys.ERASED, *(digest(i, secret) for i in found.visitors | found.customers))
    totals = {"keys": 0, "stream_entries": 0}
    for _ in range(2):
        swept = await _sweep(redis, found)
        totals = {name: totals[name] + swept[name] for name in totals}
    return totals


async def _sweep(redis: Redis, found: Footprint) -> dict[str, int]:
    persons = set(found.persons)
    referrers = await _referrers(redis, persons)
    await _leave_shared_sets(redis, persons)
    entries = 0
    for stream in STREAMS:
        doomed: list[str] = []
        async for page in stream_entries(redis, stream):
            doomed += [entry_id for entry_id, fields in page if _belongs(fields, persons)]
        for start in range(0, len(doomed), 1000):
            entries += await redis.xdel(stream, *doomed[start : start + 1000])
    pipe = redis.pipeline(transaction=False)
    for referrer in referrers:
        for person in persons:
            pipe.srem(keys.person_key("referred", keys.customer_person(referrer)), person)
    await pipe.execute()
    await _drop_retries(redis, persons)
    removed = await _delete_keys(redis, found)
    return {"keys": removed, "stream_entries": entries}


async def erased_digests(redis: Redis) -> set[str]:
    return {str(member) for member in await redis.smembers(keys.ERASED)}


def is_erased(event: dict[str, Any], erased: set[str], secret: str) -> bool:
    return any(
        isinstance(event.get(name), str) and digest(event[name], secret) in erased
        for name in ("visitor_id", "customer_id")
    )


def _belongs(fields: dict[str, str], persons: set[str]) -> bool:
    """An event stored under one of the persons, or a message addressed to one."""
    return logged_events.person_of(fields) in persons or fields.get("recipient") in persons


async def _referrers(redis: Redis, persons: Iterable[str]) -> set[str]:
    """Whoever referred these people (kept on their profiles at signup)."""
    pipe = redis.pipeline(transaction=False)
    for person in persons:
        pipe.hget(keys.person_key("profile", person), "referred_by")
    return {str(r) for r in await pipe.execute() if r}


async def _leave_shared_sets(redis: Redis, persons: Iterable[str]) -> None:
    """Segments, the journey schedule, offer redemptions, buyer months (and the set of
    everyone an upgraded store may still hold)."""
    persons = set(persons)
    months = [str(k) async for k in redis.scan_iter(match=keys.BUYERS_TEMPLATE % "*")]
    months += [str(k) async for k in redis.scan_iter(match=keys.NEW_BUYERS_TEMPLATE % "*")]
    offers: set[str] = set()
    for person in persons:
        segments = await redis.smembers(keys.person_key("segments", person))
        pending = await redis.smembers(keys.person_key("journeys", person))
        redeemed = {
            str(offer) for offer in await redis.smembers(keys.person_key("redeemed", person))
        }
        offers |= redeemed
        pipe = redis.pipeline(transaction=False)
        for name in segments:
            pipe.srem(keys.segment_key(str(name)), person)
        if pending:
            pipe.zrem(keys.JOURNEY_DUE, *pending)
        pipe.srem(keys.LEGACY_PEOPLE, person)
        for month in months:
            pipe.srem(month, person)
        for offer in redeemed:
            stats = keys.offer_key("stats", offer)
            pipe.hdel(stats, *(f % person for n, f in PERSON_STAT_FIELDS))
        await pipe.execute()
    # A redemption made as a visitor is filed under the visitor, though the offer has
    # moved to its customer's set since: any of the persons may own an order entry.
    for offer in offers:
        orders_key = keys.offer_key("orders", offer)
        mine = [k async for k, v in redis.hscan_iter(orders_key) if v in persons]
        if mine:
            await redis.hdel(orders_key, *mine)


async def _drop_retries(redis: Redis, persons: set[str]) -> None:
    waiting = [str(m) for m in await redis.zrange(keys.DELIVERY_RETRY, 0, -1)]
    mine = [m for m in waiting if parse_retry_entry(m)[0].get("recipient") in persons]
    if mine:
        await redis.zrem(keys.DELIVERY_RETRY, *mine)


async def _delete_keys(redis: Redis, found: Footprint) -> int:
    doomed = [keys.person_key(kind, p) for p in found.persons for kind in keys.PERSON_TEMPLATES]
    doomed += [keys.link_key(visitor) for visitor in found.visitors]
    doomed += [keys.merging_key(visitor) for visitor in found.visitors]
    for visitor in found.visitors:
        for placement in PLACEMENTS:  # exact placement and visitor: "y:x" is not "x"
            pattern = keys.SEND_TEMPLATE % ("*", placement, _glob_escape(visitor))
            doomed += [str(k) async for k in redis.scan_iter(match=pattern, count=1000)]
    removed = 0
    for key in doomed:  # one by one: on a Cluster each key may live on another node
        removed += await redis.delete(key)
    return removed


async def _dump_person(redis: Redis, person: str) -> dict[str, Any]:
    dumped: dict[str, Any] = {}
    for kind in keys.PERSON_TEMPLATES:
        key = keys.person_key(kind, person)
        kind_of = await redis.type(key)
        if kind_of == "hash":
            dumped[kind] = await redis.hgetall(key)
        elif kind_of == "list" and kind == "recent":  # stored compactly: exported decoded
            entries = cast(list[str], await redis.lrange(key, 0, -1))
            dumped[kind] = [i._asdict() for i in decode_interactions(entries)]
        elif kind_of == "list":
            dumped[kind] = await redis.lrange(key, 0, -1)
        elif kind_of == "set":
            dumped[kind] = sorted(await redis.smembers(key))
        elif kind_of == "zset":
            dumped[kind] = await redis.zrange(key, 0, -1, withscores=True)
    return dumped


def _glob_escape(text: str) -> str:
    """A literal for SCAN MATCH: ids may hold the pattern characters * ? [ ] and \\."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)

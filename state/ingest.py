"""Storing behaviour events: applied to their persons, then appended to the stream.

`event_op` is the pure part: it turns a validated event into the small set of updates
it implies (recent interactions, cart changes, an order). Storing a request takes three
round trips, each slot-local so that a Redis Cluster takes them as they are:

1. read the visitors' customer links, and link (merging an anonymous visitor into its
   customer, see `state.identity`) where an event names a new customer;
2. apply the ops with the apply script, per person: dedup by `event_id`, profile, cart,
   ledger. An event id is marked "unlogged" until step 3 has appended it;
3. append the fresh events to the behaviour stream and update the cross-person sets
   (everyone, the month's buyers, referrals), then clear the "unlogged" marks.

A request that fails between 2 and 3 answers an error; its retry finds the events
applied but unlogged and appends them then, so an acknowledged event is always in the
stream and never counted twice in a profile.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from campaigns.retention import month_of
from models.events import MAX_ID_LENGTH, Event, EventType, LineItem
from models.weights import SECONDS_PER_DAY, event_weight
from settings import Settings
from state import keys
from state.identity import Linker, read_links
from state.interactions import encode_interaction
from state.slots import slot_groups

# Consent may change with any event (a preference centre, an unsubscribe link, checkout);
# a birthday is taken at signup.
CONSENT_FIELDS = ("email_opt_in", "sms_opt_in")
SIGNUP_FIELDS = ("birthday",)
# Attribution touches kept per person: plenty for a 24-hour click window.
TOUCHES_CAP = 50
_APPLY = resources.files("state").joinpath("apply.lua").read_text()
# The person kinds the apply script writes.
APPLY_KINDS = ("profile", "recent", "cart", "wishlist", "purchased", "orders", "counts",
               "seen", "unlogged")  # fmt: skip
# KEYS: the referrer's referred set and profile. ARGV: the referee.
_REFER = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], 'referrals', 1) end
"""


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
    """Writes validated events to Redis; one instance per Redis client."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._apply = redis.register_script(_APPLY)
        self._refer = redis.register_script(_REFER)
        self._linker = Linker(redis, settings.recent_interactions_cap, TOUCHES_CAP)
        self._settings = settings
        self._templates = {kind: keys.PERSON_TEMPLATES[kind] for kind in APPLY_KINDS}

    async def ingest(self, events: Sequence[Event], now: datetime | None = None) -> IngestResult:
        if not events:
            return IngestResult(0, 0)
        now = now or datetime.now(UTC)
        ops = [event_op(event, now) for event in events]
        links = await read_links(self._redis, (op["visitor"] for op in ops))
        persons: list[str] = []
        outcomes: list[Outcome] = []
        for index, op in enumerate(ops):
            visitor, customer = op["visitor"], op.get("customer")
            if customer and customer != links[visitor] and not await self._is_replay(op):
                # The visitor's earlier events of this batch land before it merges.
                done = len(outcomes)
                outcomes += await self._store(ops[done:index], persons[done:index], now)
                await self._linker.link(visitor, links[visitor], customer)
                links[visitor] = customer
            persons.append(_person_of(op, links[visitor]))
        done = len(outcomes)
        outcomes += await self._store(ops[done:], persons[done:], now)
        return IngestResult(
            accepted=sum(outcome.status != "dup" for outcome in outcomes),
            duplicates=sum(outcome.status == "dup" for outcome in outcomes),
            persons=tuple(
                None if outcome.status == "dup" else person
                for person, outcome in zip(persons, outcomes, strict=True)
            ),
            new_orders=tuple(outcome.new_order for outcome in outcomes),
        )

    async def _is_replay(self, op: dict[str, Any]) -> bool:
        """A retried event that once linked its visitor must not move it again."""
        if "event_id" not in op:
            return False
        seen = keys.person_key("seen", keys.customer_person(op["customer"]))
        return await self._redis.zscore(seen, op["event_id"]) is not None

    async def _store(
        self, ops: list[dict[str, Any]], persons: list[str], now: datetime
    ) -> list[Outcome]:
        if not ops:
            return []
        outcomes = await self._apply_ops(ops, persons, now)
        await self._log(ops, persons, outcomes)
        return outcomes

    async def _apply_ops(
        self, ops: list[dict[str, Any]], persons: list[str], now: datetime
    ) -> list[Outcome]:
        """Apply ops to their persons (`persons` lines up with `ops`): one script call
        per hash slot, the calls running side by side."""
        by_person: dict[str, list[int]] = {}
        for index, person in enumerate(persons):
            by_person.setdefault(person, []).append(index)
        groups = slot_groups(self._redis, by_person, _profile_key)
        replies = await asyncio.gather(
            *(self._apply_group(group, by_person, ops, now) for group in groups)
        )
        outcomes: dict[int, Outcome] = {}
        for group, reply in zip(groups, replies, strict=True):
            indexes = [index for person in group for index in by_person[person]]
            for index, (status, new_order, first_order) in zip(indexes, reply, strict=True):
                outcomes[index] = Outcome(str(status), bool(new_order), bool(first_order))
        return [outcomes[index] for index in range(len(ops))]

    async def _apply_group(
        self,
        group: list[str],
        by_person: dict[str, list[int]],
        ops: list[dict[str, Any]],
        now: datetime,
    ) -> list[Any]:
        payload = {
            "templates": self._templates,
            "now": now.timestamp(),
            "dedup_ttl": self._settings.dedup_ttl_seconds,
            "recent_cap": self._settings.recent_interactions_cap,
            "groups": [[person, [ops[i] for i in by_person[person]]] for person in group],
        }
        reply: list[Any] = await self._apply(
            keys=[_profile_key(group[0])], args=[orjson.dumps(payload)]
        )
        return reply

    async def _log(
        self, ops: list[dict[str, Any]], persons: list[str], outcomes: list[Outcome]
    ) -> None:
        """Append what is new to the stream and the cross-person sets, then clear the
        events' "unlogged" marks: only now is the request acknowledged."""
        pipe = self._redis.pipeline(transaction=False)
        unlogged: dict[str, list[str]] = {}
        for op, person, outcome in zip(ops, persons, outcomes, strict=True):
            if outcome.status == "dup":
                continue
            pipe.xadd(
                keys.EVENTS_STREAM,
                {"person": person, "event": op["record"]},
                maxlen=self._settings.stream_max_len,
                approximate=True,
            )
            if "event_id" in op:
                unlogged.setdefault(person, []).append(op["event_id"])
            if outcome.status == "fresh":
                await self._count(pipe, op, person, outcome)
        for person in dict.fromkeys(persons):
            pipe.sadd(keys.PEOPLE, person)
        for person, ids in unlogged.items():
            pipe.srem(keys.person_key("unlogged", person), *ids)
        await pipe.execute()

    async def _count(
        self, pipe: Pipeline, op: dict[str, Any], person: str, outcome: Outcome
    ) -> None:
        """A fresh event's share of the cross-person sets: retention and referrals."""
        if outcome.new_order:
            month = month_of(op["ts"])
            pipe.sadd(keys.buyers_key(month), person)
            if outcome.first_order:
                pipe.sadd(keys.new_buyers_key(month), person)
            pipe.hincrby(keys.month_totals_key(month), "orders", 1)
            pipe.hincrbyfloat(keys.month_totals_key(month), "revenue", op["purchase"]["value"])
        referrer = op.get("referrer")
        if referrer and referrer != op.get("customer"):
            # A referee counts once per referrer, however often they sign up.
            referrer_person = keys.customer_person(referrer)
            await self._refer(
                keys=[
                    keys.person_key("referred", referrer_person),
                    keys.person_key("profile", referrer_person),
                ],
                args=[person],
            )


@dataclass(frozen=True)
class Outcome:
    """What the apply script did with one op."""

    status: str  # fresh, dup, or relog (applied before, not yet on the stream)
    new_order: bool
    first_order: bool


def _person_of(op: dict[str, Any], linked: str | None) -> str:
    customer = op.get("customer") or linked
    return keys.customer_person(customer) if customer else keys.visitor_person(op["visitor"])


def _profile_key(person: str) -> str:
    return keys.person_key("profile", person)


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

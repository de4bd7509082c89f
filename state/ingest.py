"""Storing behaviour events: applied to their persons, then appended to the stream.

`event_op` is the pure part: it turns a validated event into the small set of updates
it implies (recent interactions, cart changes, an order). Storing a request takes a few
steps, each slot-local so that a Redis Cluster takes them as they are:

1. read the visitors' customer links (one script call per slot), and link visitors to
   the customers their events name (merging an anonymous visitor, `state.identity`);
2. apply the ops with the apply script, one call per slot: dedup by `event_id`,
   profile, cart, ledger. An event id stays marked "unlogged" until step 4;
3. append the new events to the behaviour stream (one script call), then update the
   cross-person sets (the month's buyers, referrals);
4. clear the "unlogged" marks.

A request that fails after step 2 answers an error; its retry finds the events applied
but unlogged and appends (and counts) them then, so an acknowledged event is always in
the stream and never applied twice to a profile.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from campaigns.person import TIMED_EVENT_TYPES
from campaigns.retention import month_of
from models.events import MAX_ID_LENGTH, Event, EventType
from models.weights import SECONDS_PER_DAY, event_weight
from settings import Settings
from state import keys, logged_events
from state.identity import Linker, read_links_and_merges
from state.interactions import LUA_TYPE_CODES, encode_interaction
from state.scripts import lua
from state.slots import per_slot, slot_groups

# Consent may change with any event (a preference centre, an unsubscribe link, checkout);
# a birthday is taken at signup.
CONSENT_FIELDS = ("email_opt_in", "sms_opt_in")
SIGNUP_FIELDS = ("birthday",)
# Looked up once: an enum's `.value` is a descriptor call, and every event asks.
_TYPE_NAMES = {kind: kind.value for kind in EventType}
_WEIGHTED = frozenset(kind for kind in EventType if event_weight(kind.value) > 0)
# Attribution touches kept per person: plenty for a 24-hour click window.
TOUCHES_CAP = 50
# The helpers apply.lua calls, prepended to it.
APPLY_PRELUDES = ("fields.lua", "windows.lua", "recent.lua")
_APPLY = lua(*APPLY_PRELUDES, "apply.lua")
# The person kinds the apply script writes.
APPLY_KINDS = ("profile", "recent", "cart", "wishlist", "purchased", "orders", "counts",
               "seen", "unlogged")  # fmt: skip
# KEYS: the referrer's referred set and profile. ARGV: the referee.
_REFER = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], 'referrals', 1) end
"""
# A batch's stream entries in one call, trimmed once at the end (the stream is over its
# cap only inside the script, which nothing sees; a MAXLEN on each XADD cost a quarter
# more). KEYS: the stream. ARGV: max length, then each event's row (`state.logged_events`).
_APPEND = """
for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', 'row', ARGV[i]) end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])
"""
# KEYS: persons' unlogged hashes. ARGV: per hash, the JSON list of event ids now on the
# stream.
_SETTLE = """
for i, k in ipairs(KEYS) do redis.call('HDEL', k, unpack(cjson.decode(ARGV[i]))) end
return KEYS
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
    kind = event.type
    name = _TYPE_NAMES[kind]
    op: dict[str, Any] = {
        "visitor": event.visitor_id,
        "type": name,
        "ts": ts,
        "day": int(ts // SECONDS_PER_DAY),
        "columns": logged_events.columns(event, at),
    }
    if event.event_id:
        op["event_id"] = event.event_id
    if event.customer_id:
        op["customer"] = event.customer_id
    if kind in _WEIGHTED:
        recent = [part for item in event.item_ids() for part in encode_interaction(name, item, ts)]
        if recent:
            op["recent"] = recent
    if kind is EventType.ADD_TO_CART:
        op["cart_add"] = event.quantities()
    elif kind is EventType.REMOVE_FROM_CART:
        op["cart_remove"] = event.quantities()
    elif kind is EventType.WISHLIST_ADD:
        op["wishlist"] = event.item_ids()
    elif kind is EventType.PURCHASE:
        op["purchase"] = {
            "items": event.item_ids(),
            "value": event.ledger_value(),
            # The ledger key: the order id, else the event id, else a fresh one.
            "order_key": event.ledger_key() or f"event:{uuid.uuid4().hex}",
        }
    elif kind is EventType.RETURN_REQUESTED and event.order_id:
        op["returned"] = event.order_id
    elif kind is EventType.SIGNUP and event.properties:
        referrer = event.properties.get("referred_by")
        if isinstance(referrer, str) and 0 < len(referrer) <= MAX_ID_LENGTH:
            op["referrer"] = referrer
    if event.properties:
        fields = CONSENT_FIELDS + (SIGNUP_FIELDS if kind is EventType.SIGNUP else ())
        profile = {f: _flag(event.properties[f]) for f in fields if f in event.properties}
        if profile:
            op["profile"] = profile
    return op


class EventStore:
    """Writes validated events to Redis; one instance per Redis client."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._apply = redis.register_script(_APPLY)
        self._refer = redis.register_script(_REFER)
        self._append = redis.register_script(_APPEND)
        self._settle = redis.register_script(_SETTLE)
        self._linker = Linker(
            redis, settings.recent_interactions_cap, TOUCHES_CAP, settings.dedup_ttl_seconds
        )
        self._settings = settings
        self._templates = {kind: keys.PERSON_TEMPLATES[kind] for kind in APPLY_KINDS}

    async def ingest(self, events: Sequence[Event], now: datetime | None = None) -> IngestResult:
        if not events:
            return IngestResult(0, 0)
        now = now or datetime.now(UTC)
        ops = [event_op(event, now) for event in events]
        links, merging = await read_links_and_merges(self._redis, (op["visitor"] for op in ops))
        # A sign-in merge that another request left unfinished is finished first.
        await self._linker.finish_merges(merging)
        persons, changes = await self._resolve(ops, links)
        # Links first (each visitor's in order, visitors together), then the events.
        await self._link_all(changes)
        outcomes = await self._store(ops, persons, now)
        return IngestResult(
            accepted=sum(outcome.status != "dup" for outcome in outcomes),
            duplicates=sum(outcome.status == "dup" for outcome in outcomes),
            persons=tuple(
                None if outcome.status == "dup" else person
                for person, outcome in zip(persons, outcomes, strict=True)
            ),
            new_orders=tuple(outcome.new_order for outcome in outcomes),
        )

    async def _resolve(
        self, ops: list[dict[str, Any]], links: dict[str, str | None]
    ) -> tuple[list[str], dict[str, list[tuple[str | None, str]]]]:
        """Each op's person, and per visitor the link changes (old link, new customer)
        its events make, in order."""
        checked, replays = await self._replays(ops, links)
        persons: list[str] = []
        changes: dict[str, list[tuple[str | None, str]]] = {}
        for index, op in enumerate(ops):
            visitor, customer = op["visitor"], op.get("customer")
            if customer and customer != links[visitor]:
                if index not in checked and await self._is_replay(op):
                    replays.add(index)
                if index in replays:
                    persons.append(keys.customer_person(customer))
                    continue
                changes.setdefault(visitor, []).append((links[visitor], customer))
                if links[visitor] is None:
                    # The visitor's earlier events of this batch go where the merge takes
                    # its stored ones: straight to the customer.
                    anonymous = keys.visitor_person(visitor)
                    persons = [
                        keys.customer_person(customer) if p == anonymous else p for p in persons
                    ]
                links[visitor] = customer
            persons.append(_person_of(op, links[visitor]))
        return persons, changes

    async def _replays(
        self, ops: list[dict[str, Any]], links: dict[str, str | None]
    ) -> tuple[set[int], set[int]]:
        """Which ops were checked for being retries of an event that once linked its
        visitor (they must not move it again), and which of those are.

        Checked at once: the ops that would change a link if every earlier one did.
        An op that only becomes a change because one of these was a retry is checked
        on its own (`_is_replay`)."""
        expected = dict(links)
        checked: list[int] = []
        for index, op in enumerate(ops):
            customer = op.get("customer")
            if customer and customer != expected[op["visitor"]]:
                expected[op["visitor"]] = customer
                if "event_id" in op:
                    checked.append(index)
        if not checked:
            return set(), set()
        pipe = self._redis.pipeline(transaction=False)
        for index in checked:
            pipe.zscore(_seen_key(ops[index]), ops[index]["event_id"])
        found = await pipe.execute()
        return set(checked), {
            i for i, score in zip(checked, found, strict=True) if score is not None
        }

    async def _is_replay(self, op: dict[str, Any]) -> bool:
        if "event_id" not in op:
            return False
        return await self._redis.zscore(_seen_key(op), op["event_id"]) is not None

    async def _link_all(self, changes: dict[str, list[tuple[str | None, str]]]) -> None:
        """Round n links every visitor with an n-th change, all of them at once."""
        depth = max((len(steps) for steps in changes.values()), default=0)
        for n in range(depth):
            await self._linker.link_all(
                [(visitor, *steps[n]) for visitor, steps in changes.items() if len(steps) > n]
            )

    async def _store(
        self, ops: list[dict[str, Any]], persons: list[str], now: datetime
    ) -> list[Outcome]:
        # The stream columns and the visitor ids travel only to the append: the apply
        # script has no use for either, and its cost grows with its JSON.
        to_log = [(op.pop("columns"), op.pop("visitor")) for op in ops]
        outcomes = await self._apply_ops(ops, persons, now)
        moved = [index for index, outcome in enumerate(outcomes) if outcome.status == "moved"]
        if moved:
            # Resolved before a concurrent sign-in linked the visitor: to the customer,
            # unless this call already answered for the same id there.
            answered = {
                (persons[i], op["event_id"])
                for i, op in enumerate(ops)
                if "event_id" in op and outcomes[i].status != "moved"
            }
            for index in moved:
                persons[index] = keys.customer_person(outcomes[index].moved_to)
                if (persons[index], ops[index].get("event_id")) in answered:
                    outcomes[index] = Outcome("dup", False, False)
            moved = [index for index in moved if outcomes[index].status == "moved"]
            again = await self._apply_ops([ops[i] for i in moved], [persons[i] for i in moved], now)
            for index, outcome in zip(moved, again, strict=True):
                outcomes[index] = outcome
        await self._log(ops, to_log, persons, outcomes)
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
            for index, outcome in zip(indexes, Outcome.from_reply(reply), strict=True):
                outcomes[index] = outcome
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
            "link": keys.LINK_TEMPLATE,
            "visitor_prefix": keys.VISITOR_PERSON % "",
            # Whole seconds: dedup needs no finer arrival time, and a zset packs an
            # integer score in 5 bytes where a fraction takes 18.
            "now": int(now.timestamp()),
            "dedup_ttl": self._settings.dedup_ttl_seconds,
            "recent_cap": self._settings.recent_interactions_cap,
            "type_codes": LUA_TYPE_CODES,
            "timed": TIMED_EVENT_TYPES,
            "groups": [[person, [ops[i] for i in by_person[person]]] for person in group],
        }
        reply: list[Any] = await self._apply(
            keys=[_profile_key(group[0])], args=[orjson.dumps(payload)]
        )
        return reply

    async def _log(
        self,
        ops: list[dict[str, Any]],
        to_log: list[tuple[str, str]],  # each event's stream columns and visitor
        persons: list[str],
        outcomes: list[Outcome],
    ) -> None:
        """Append what is new to the stream, then to the cross-person sets; once all of
        that has succeeded, clear the events' "unlogged" marks. A retry after a failure
        here redoes it: the sets are idempotent; only a failure after the append, while
        the sets are written, can count an order twice in its month's totals."""
        entries: list[str] = []
        unlogged: dict[str, list[str]] = {}
        months: dict[str, MonthOrders] = {}
        shared: list[Awaitable[Any]] = []  # cross-person writes: referrals, the months
        for op, (columns, visitor), person, outcome in zip(
            ops, to_log, persons, outcomes, strict=True
        ):
            if outcome.status == "dup":
                continue
            entries.append(logged_events.entry(columns, visitor, person))
            if "event_id" in op:
                unlogged.setdefault(person, []).append(op["event_id"])
            # A relog is counted again: the attempt that applied it may have failed first.
            # (Its flags are that attempt's: a client that reused the id for an event of
            # another type gets no order counted, rather than an error.)
            if outcome.new_order and "purchase" in op:
                month = months.setdefault(month_of(op["ts"]), MonthOrders())
                month.add(person, outcome.first_order, op["purchase"]["value"])
            if op.get("referrer") and op["referrer"] != op.get("customer"):
                shared.append(self._refer_once(op["referrer"], person))
        if not entries:
            return
        stream = [keys.EVENTS_STREAM]
        await self._append(keys=stream, args=[self._settings.stream_max_len, *entries])
        if months:
            counts = self._redis.pipeline(transaction=False)
            for name, month in months.items():
                month.queue(counts, name)
            shared.append(counts.execute())
        await asyncio.gather(*shared)
        if unlogged:
            marks = [keys.person_key("unlogged", person) for person in unlogged]
            await per_slot(
                self._redis, self._settle, marks, [orjson.dumps(ids) for ids in unlogged.values()]
            )

    async def _refer_once(self, referrer: str, referee: str) -> None:
        """A referee counts once per referrer, however often they sign up."""
        person = keys.customer_person(referrer)
        await self._refer(
            keys=[keys.person_key("referred", person), keys.person_key("profile", person)],
            args=[referee],
        )


@dataclass
class MonthOrders:
    """A batch's new orders of one month, for the retention sets and the month's totals:
    four commands a month, not four an order."""

    buyers: list[str] = field(default_factory=list)
    first_buyers: list[str] = field(default_factory=list)
    revenue: float = 0.0

    def add(self, person: str, first_order: bool, value: float) -> None:
        self.buyers.append(person)
        if first_order:
            self.first_buyers.append(person)
        self.revenue += value

    def queue(self, pipe: Pipeline, month: str) -> None:
        pipe.sadd(keys.buyers_key(month), *self.buyers)
        if self.first_buyers:
            pipe.sadd(keys.new_buyers_key(month), *self.first_buyers)
        pipe.hincrby(keys.month_totals_key(month), "orders", len(self.buyers))
        pipe.hincrbyfloat(keys.month_totals_key(month), "revenue", self.revenue)


class Outcome(NamedTuple):
    """What the apply script did with one op (a tuple: one is built for every event)."""

    status: str  # fresh, dup, relog (applied before, not yet on the stream), or moved
    new_order: bool
    first_order: bool
    moved_to: str = ""  # for "moved": the customer the visitor was linked to meanwhile

    @staticmethod
    def from_reply(reply: list[Any]) -> list[Outcome]:
        """The apply script's answer, an outcome per op: see state/apply.lua."""
        codes, customers = reply
        moved = iter(customers)
        return [
            _OUTCOMES.get(code) or Outcome("moved", False, False, next(moved))
            for code in (codes[i : i + 3] for i in range(0, len(codes), 3))
        ]


_STATUSES = {"f": "fresh", "d": "dup", "r": "relog"}
# Every code but a move's: one outcome each, shared, as they are immutable.
_OUTCOMES = {
    status + new + first: Outcome(name, new == "1", first == "1")
    for status, name in _STATUSES.items()
    for new in "01"
    for first in "01"
}


def _person_of(op: dict[str, Any], linked: str | None) -> str:
    customer = op.get("customer") or linked
    return keys.customer_person(customer) if customer else keys.visitor_person(op["visitor"])


def _seen_key(op: dict[str, Any]) -> str:
    """Where a linking op's event id would be, had it been stored before: its customer."""
    return keys.person_key("seen", keys.customer_person(op["customer"]))


def _profile_key(person: str) -> str:
    return keys.person_key("profile", person)


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)[:64]

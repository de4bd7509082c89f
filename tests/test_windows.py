"""Keys that only serve a time window leave Redis with it.

Most visitors never come back: their event-id dedup set and daily counts must not stay
for good once no reader looks at them (the dedup window; the 91 days segment rules and
churn features read). Arrival times are passed to the store, as a replay would.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis

from models.events import Event
from settings import Settings
from state import keys
from state.connection import open_client
from state.ingest import EventStore, IngestResult
from state.interactions import decode_interactions

DAY = 86400
TTL = Settings().dedup_ttl_seconds


def ingest(url: str, now: datetime, *events: dict[str, Any]) -> IngestResult:
    """Stores `events` as if they arrived at `now`."""

    async def run() -> IngestResult:
        client = await open_client(url)
        try:
            store = EventStore(client, Settings())
            return await store.ingest([Event.model_validate(e) for e in events], now=now)
        finally:
            await client.aclose()

    return asyncio.run(run())


def view(visitor: str, when: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": "view", "visitor_id": visitor, "item_id": "i000001",
            "timestamp": when.isoformat(), **fields}  # fmt: skip


def key(kind: str, person: str) -> str:
    return keys.person_key(kind, person)


def midday(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def test_dedup_ids_leave_with_the_window_after_their_newest_arrival(
    valkey: str, redis_client: redis.Redis, visitor_id: str
) -> None:
    visitor, person, now = visitor_id, keys.visitor_person(visitor_id), datetime.now(UTC)
    long_ago = now - timedelta(seconds=TTL + 60)
    event = view(visitor, long_ago, event_id=f"e-{visitor}")
    assert ingest(valkey, long_ago, event).accepted == 1
    # Arrived before the window: nothing of its dedup stays, the profile does.
    assert redis_client.exists(key("seen", person), key("unlogged", person)) == 0
    assert redis_client.hget(key("profile", person), "events") == "1"
    # The same id again, now: a new arrival, held for the window and refused within it.
    assert ingest(valkey, now, event).accepted == 1
    assert redis_client.expiretime(key("seen", person)) == int(now.timestamp()) + TTL
    assert ingest(valkey, now, event).duplicates == 1
    assert redis_client.hget(key("profile", person), "events") == "2"


def test_daily_counts_of_someone_who_stopped_coming_leave_with_the_window(
    valkey: str, redis_client: redis.Redis, visitor_id: str
) -> None:
    visitor, person, now = visitor_id, keys.visitor_person(visitor_id), datetime.now(UTC)
    search = {"type": "search", "visitor_id": visitor, "query": "socks"}
    ingest(valkey, now, view(visitor, midday(95)),
           {**search, "timestamp": midday(92).isoformat()})  # fmt: skip
    assert redis_client.exists(key("counts", person)) == 0
    assert redis_client.hget(key("profile", person), "events") == "2"
    ingest(valkey, now, view(visitor, midday(30)))
    ingest(valkey, now, view(visitor, midday(60)))  # older: the newest day stays
    newest = int(midday(30).timestamp()) // DAY
    assert redis_client.expiretime(key("counts", person)) == (newest + 91) * DAY
    assert redis_client.hgetall(key("counts", person)) == {
        f"view:{newest}": "1",
        f"view:{newest - 30}": "1",
    }


def test_a_sign_in_keeps_the_newest_of_both_sides_windows(
    valkey: str, redis_client: redis.Redis
) -> None:
    suffix = uuid.uuid4().hex
    customer, earlier, visitor = f"c-{suffix}", f"t-a-{suffix}", f"t-b-{suffix}"
    target = keys.customer_person(customer)
    now = datetime.now(UTC)
    six_days_ago = now - timedelta(days=6)
    # The customer's own id arrived six days ago; its counts are from then.
    ingest(valkey, six_days_ago,
           view(earlier, six_days_ago, event_id=f"e1-{suffix}", customer_id=customer))  # fmt: skip
    assert redis_client.expiretime(key("seen", target)) == int(six_days_ago.timestamp()) + TTL
    # An anonymous visitor's id arrives now, with yesterday's view; then it signs in
    # (an event without an id, dated long ago, so only the fold moves either window).
    ingest(valkey, now, view(visitor, midday(1), event_id=f"e2-{suffix}"))
    ingest(valkey, now, view(visitor, midday(50), customer_id=customer))
    assert redis_client.exists(key("seen", keys.visitor_person(visitor))) == 0
    assert redis_client.zscore(key("seen", target), f"e2-{suffix}") == int(now.timestamp())
    assert redis_client.expiretime(key("seen", target)) == int(now.timestamp()) + TTL
    newest = int(midday(1).timestamp()) // DAY
    assert redis_client.expiretime(key("counts", target)) == (newest + 91) * DAY
    # Its id is still known on the customer: a retry is a duplicate.
    assert ingest(valkey, now, view(visitor, midday(1), event_id=f"e2-{suffix}")).duplicates == 1


def test_a_replica_with_a_slower_clock_does_not_shorten_the_dedup_window(
    valkey: str, redis_client: redis.Redis, visitor_id: str
) -> None:
    visitor, seen = visitor_id, key("seen", keys.visitor_person(visitor_id))
    now = datetime.now(UTC)
    ingest(valkey, now, view(visitor, now, event_id=f"e1-{visitor}"))
    behind = now - timedelta(seconds=300)
    ingest(valkey, behind, view(visitor, behind, event_id=f"e2-{visitor}"))
    assert redis_client.expiretime(seen) == int(now.timestamp()) + TTL


def test_a_sign_in_folds_ids_stored_with_fractional_arrival_times(
    valkey: str, redis_client: redis.Redis
) -> None:
    """Arrivals were stored with fractions before they were whole seconds."""
    suffix = uuid.uuid4().hex
    visitor, customer = f"t-{suffix}", f"c-{suffix}"
    person = keys.visitor_person(visitor)
    now = datetime.now(UTC)
    ingest(valkey, now, view(visitor, now, properties={"email_opt_in": True}))
    arrival = now.timestamp() - 0.25
    redis_client.zadd(key("seen", person), {f"e-old-{suffix}": arrival})
    redis_client.hset(key("profile", person), "birthday", "1990-04-01")
    signed = ingest(valkey, now, view(visitor, now, customer_id=customer))
    assert signed.accepted == 1
    target = keys.customer_person(customer)
    assert redis_client.hget(key("profile", target), "birthday") == "1990-04-01"
    assert redis_client.hget(key("profile", target), "events") == "2"
    assert redis_client.expiretime(key("seen", target)) == math.ceil(arrival + TTL)


def test_a_sign_in_keeps_the_order_of_one_seconds_interactions(
    valkey: str, redis_client: redis.Redis
) -> None:
    suffix = uuid.uuid4().hex
    visitor, customer = f"t-{suffix}", f"c-{suffix}"
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    items = [f"i{n:06d}" for n in range(12)]
    for item in items:  # one request each, all within one second
        ingest(valkey, moment, {**view(visitor, moment), "item_id": item})
    signup = {"type": "signup", "visitor_id": visitor, "customer_id": customer}
    ingest(valkey, moment, signup)
    recent = cast(
        list[str], redis_client.lrange(key("recent", keys.customer_person(customer)), 0, -1)
    )
    assert [x.item_id for x in decode_interactions(recent)] == items[::-1]


def test_a_sign_in_merges_a_list_written_before_the_pairs_by_time(
    valkey: str, redis_client: redis.Redis
) -> None:
    suffix = uuid.uuid4().hex
    visitor, customer = f"t-{suffix}", f"c-{suffix}"
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = int(now.timestamp())
    # The customer's own list, as this version writes it: i2 at -20 s, i4 at -10 s.
    other = f"o-{suffix}"
    ingest(valkey, now, {"type": "signup", "visitor_id": other, "customer_id": customer})
    for item, ago in (("i2", 20), ("i4", 10)):
        when = now - timedelta(seconds=ago)
        ingest(valkey, now, view(other, when, item_id=item))
    # The visitor's list from an older version: i1 at -30 s and i3 at -15 s, newest first.
    older = [f"a\ti3\t{stamp - 15}", f"view\ti1\t{stamp - 30}.000"]
    redis_client.rpush(key("recent", keys.visitor_person(visitor)), *older)
    redis_client.hset(key("profile", keys.visitor_person(visitor)), "events", 2)
    ingest(valkey, now, {"type": "signup", "visitor_id": visitor, "customer_id": customer})
    merged = cast(
        list[str], redis_client.lrange(key("recent", keys.customer_person(customer)), 0, -1)
    )
    assert [(x.item_id, x.event_type) for x in decode_interactions(merged)] == [
        ("i4", "view"), ("i3", "add_to_cart"), ("i2", "view"), ("i1", "view")
    ]  # fmt: skip
    assert not any("\t" in element for element in merged)  # all pairs now

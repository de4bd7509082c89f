"""Storing events is a few slot-local steps; a failure between them must be healed by the
client's retry: nothing acknowledged is lost, nothing is applied or counted twice.

Failures are real Redis errors: a key of the wrong type where a step writes (WRONGTYPE),
removed before the retry. Each test has a Valkey of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from models.events import Event
from settings import Settings
from state import keys, logged_events
from state.connection import open_client
from state.ingest import EventStore, IngestResult, event_op
from tests.conftest import own_redis
from training.backfill import export_history
from training.datafiles import read_events

ORDER_TIME = "2024-03-05T10:00:00Z"
MONTH = "2024-03"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with own_redis(tmp_path / "valkey") as url:
        yield url


def run_against(redis_url: str, scenario: Callable[[Redis], Awaitable[None]]) -> None:
    """Run `scenario` with a client of the test's own Valkey, closed whatever happens."""

    async def run() -> None:
        redis = await open_client(redis_url)
        try:
            await scenario(redis)
        finally:
            await redis.aclose()

    asyncio.run(run())


async def ingest(redis: Redis, *events: dict[str, Any]) -> IngestResult:
    store = EventStore(redis, Settings())
    return await store.ingest([Event.model_validate(event) for event in events])


async def stream_ids(redis: Redis) -> list[str]:
    entries: Any = await redis.xrange(keys.EVENTS_STREAM)
    return [logged_events.decode(fields).row.get("event_id", "") for _, fields in entries]


async def signed_in(redis: Redis, visitor: str, customer: str) -> EventStore:
    """A store whose `visitor` has just signed in as `customer`."""
    signup = {"event_id": f"e-in-{visitor}", "type": "signup", "visitor_id": visitor,
              "customer_id": customer}  # fmt: skip
    assert (await ingest(redis, signup)).accepted == 1
    return EventStore(redis, Settings())


async def broken(redis: Redis, key: str, *events: dict[str, Any]) -> None:
    """Ingest with `key` holding a string where a step expects a stream, set or hash."""
    await redis.set(key, "in the way")
    with pytest.raises(ResponseError):
        await ingest(redis, *events)
    await redis.delete(key)


def test_an_event_applied_but_not_appended_is_appended_and_counted_on_retry(
    redis_url: str,
) -> None:
    purchase = {"event_id": "e-order", "type": "purchase", "visitor_id": "v1", "item_id": "i1",
                "order_id": "o1", "value": 40.0, "timestamp": ORDER_TIME}  # fmt: skip

    async def scenario(redis: Redis) -> None:
        await broken(redis, keys.EVENTS_STREAM, purchase)
        person = keys.visitor_person("v1")
        assert await redis.hexists(keys.person_key("orders", person), "o1")  # applied...
        assert await stream_ids(redis) == []  # ...but not acknowledged, not on the stream

        retried = await ingest(redis, purchase)
        assert (retried.accepted, retried.duplicates, retried.new_orders) == (1, 0, (True,))
        assert await stream_ids(redis) == ["e-order"]
        assert await redis.sismember(keys.buyers_key(MONTH), person)
        assert await redis.hget(keys.month_totals_key(MONTH), "orders") == "1"
        assert await redis.hget(keys.person_key("profile", person), "events") == "1"

        again = await ingest(redis, purchase)
        assert (again.accepted, again.duplicates) == (0, 1)
        assert await stream_ids(redis) == ["e-order"]
        assert not await redis.exists(keys.person_key("unlogged", person))

    run_against(redis_url, scenario)


def test_an_unappended_event_follows_its_visitor_into_the_customer(redis_url: str) -> None:
    cart = {"event_id": "e-cart", "type": "add_to_cart", "visitor_id": "v2", "item_id": "i1"}
    signup = {"event_id": "e-signup", "type": "signup", "visitor_id": "v2", "customer_id": "c2"}

    async def scenario(redis: Redis) -> None:
        await broken(redis, keys.EVENTS_STREAM, cart)
        assert (await ingest(redis, signup)).accepted == 1
        retried = await ingest(redis, cart)  # now resolves to the customer
        assert (retried.accepted, retried.persons) == (1, (keys.customer_person("c2"),))
        assert sorted(await stream_ids(redis)) == ["e-cart", "e-signup"]
        customer = keys.customer_person("c2")
        assert await redis.hgetall(keys.person_key("cart", customer)) == {"i1": "1"}
        assert (await ingest(redis, cart)).duplicates == 1

    run_against(redis_url, scenario)


def test_a_merge_cut_short_is_finished_by_the_retry(redis_url: str) -> None:
    order = {"event_id": "e-o", "type": "purchase", "visitor_id": "v3", "order_id": "o3",
             "value": 25.0, "item_id": "i1", "timestamp": ORDER_TIME}  # fmt: skip
    signup = {"event_id": "e-s", "type": "signup", "visitor_id": "v3", "customer_id": "c3"}

    async def scenario(redis: Redis) -> None:
        assert (await ingest(redis, order)).accepted == 1
        # The fold into the customer succeeds, moving the month's buyers fails.
        await broken(redis, keys.new_buyers_key(MONTH), signup)
        visitor, customer = keys.visitor_person("v3"), keys.customer_person("c3")
        assert await redis.get(keys.merging_key("v3")) == "c3"  # linked, not finished

        assert (await ingest(redis, signup)).accepted == 1
        assert await redis.get(keys.link_key("v3")) == "c3"
        assert await redis.get(keys.merging_key("v3")) is None
        assert await redis.smembers(keys.buyers_key(MONTH)) == {customer}
        assert await redis.smembers(keys.new_buyers_key(MONTH)) == {customer}
        assert not await redis.exists(keys.person_key("profile", visitor))
        profile = await redis.hgetall(keys.person_key("profile", customer))
        assert profile["events"] == "2"  # the order and the signup, each once
        assert list(await redis.hgetall(keys.person_key("orders", customer))) == ["o3"]

    run_against(redis_url, scenario)


def test_a_failure_after_the_append_repeats_the_entry_and_the_export_keeps_one(
    redis_url: str, tmp_path: Path
) -> None:
    order = {"event_id": "e-order", "type": "purchase", "visitor_id": "v4", "order_id": "o4",
             "value": 12.0, "item_id": "i1", "timestamp": ORDER_TIME}  # fmt: skip

    async def scenario(redis: Redis) -> None:
        # Appended, then the month's shared sets failed.
        await broken(redis, keys.buyers_key(MONTH), order)
        assert (await ingest(redis, order)).accepted == 1
        assert await stream_ids(redis) == ["e-order", "e-order"]
        assert (await ingest(redis, order)).duplicates == 1

    run_against(redis_url, scenario)
    out = tmp_path / "export.jsonl"
    export_history(Settings(redis_url=redis_url), out)
    assert [row["event_id"] for row in read_events(out)] == ["e-order"]


def test_events_that_resolved_a_visitor_before_a_sign_in_land_on_the_customer(
    redis_url: str,
) -> None:
    """Request A read the visitor unlinked; request B linked it before A applied."""
    view = {"event_id": "e-late", "type": "view", "visitor_id": "v5", "item_id": "i9"}

    async def scenario(redis: Redis) -> None:
        store = await signed_in(redis, "v5", "c5")
        ops = [event_op(Event.model_validate(view), datetime.now(UTC))]
        persons = [keys.visitor_person("v5")]  # what A resolved before B's sign-in
        outcomes = await store._store(ops, persons, datetime.now(UTC))
        customer = keys.customer_person("c5")
        assert persons == [customer] and outcomes[0].status == "fresh"
        recent = await redis.lrange(keys.person_key("recent", customer), 0, -1)
        assert any("i9" in entry for entry in recent)
        assert not await redis.exists(keys.person_key("recent", keys.visitor_person("v5")))
        assert (await ingest(redis, view)).duplicates == 1

    run_against(redis_url, scenario)


def test_a_failure_late_in_a_persons_batch_keeps_the_earlier_events_applied_once(
    redis_url: str,
) -> None:
    """Redis keeps what a script wrote before it failed: the purchase and the cart add
    that landed must not land again on the retry, and the order must still count."""
    order = {"event_id": "e-o", "type": "purchase", "visitor_id": "v1", "order_id": "o1",
             "value": 40.0, "item_id": "i1", "timestamp": ORDER_TIME}  # fmt: skip
    cart = {"event_id": "e-c", "type": "add_to_cart", "visitor_id": "v1", "item_id": "i2"}
    wish = {"event_id": "e-w", "type": "wishlist_add", "visitor_id": "v1", "item_id": "i3"}

    async def scenario(redis: Redis) -> None:
        person = keys.visitor_person("v1")
        await broken(redis, keys.person_key("wishlist", person), order, cart, wish)
        retried = await ingest(redis, order, cart, wish)
        assert (retried.accepted, retried.duplicates, retried.new_orders) == (
            3,
            0,
            (True, False, False),
        )
        assert await redis.hgetall(keys.person_key("cart", person)) == {"i2": "1"}
        assert await redis.hget(keys.month_totals_key(MONTH), "orders") == "1"
        assert await redis.sismember(keys.buyers_key(MONTH), person)
        assert await redis.hget(keys.person_key("profile", person), "events") == "3"
        assert sorted(await stream_ids(redis)) == ["e-c", "e-o", "e-w"]

    run_against(redis_url, scenario)


def test_an_id_sent_to_a_customer_both_directly_and_through_a_just_linked_visitor_counts_once(
    redis_url: str,
) -> None:
    """The op resolved to the visitor comes back "moved"; its id already reached the
    customer in the same request, so it is a duplicate, not a second stream entry."""
    view = {"event_id": "e-x", "type": "view", "visitor_id": "v6", "item_id": "i9"}

    async def scenario(redis: Redis) -> None:
        store = await signed_in(redis, "v6", "c6")
        now = datetime.now(UTC)
        ops = [event_op(Event.model_validate(view), now) for _ in range(2)]
        customer = keys.customer_person("c6")
        persons = [keys.visitor_person("v6"), customer]  # one resolved before the sign-in
        outcomes = await store._store(ops, persons, now)
        assert [outcome.status for outcome in outcomes] == ["dup", "fresh"]
        assert persons == [customer, customer]
        assert (await stream_ids(redis)).count("e-x") == 1
        assert await redis.hget(keys.person_key("profile", customer), "events") == "2"

    run_against(redis_url, scenario)


def test_a_retry_that_reuses_an_unappended_orders_id_for_another_event_is_stored_not_an_error(
    redis_url: str,
) -> None:
    """A client bug, not a retry: the id's mark still says "new order", but the event
    carries none. It goes to the stream; no order is counted for it."""
    purchase = {"event_id": "e-reused", "type": "purchase", "visitor_id": "v7", "item_id": "i1",
                "order_id": "o7", "value": 40.0, "timestamp": ORDER_TIME}  # fmt: skip
    view = {"event_id": "e-reused", "type": "view", "visitor_id": "v7", "item_id": "i2",
            "timestamp": ORDER_TIME}  # fmt: skip

    async def scenario(redis: Redis) -> None:
        await broken(redis, keys.EVENTS_STREAM, purchase)
        result = await ingest(redis, view)
        assert (result.accepted, result.duplicates) == (1, 0)
        assert await stream_ids(redis) == ["e-reused"]
        assert await redis.hget(keys.month_totals_key(MONTH), "orders") is None

    run_against(redis_url, scenario)


def test_one_call_with_thousands_of_a_persons_days_stores_them_all(redis_url: str) -> None:
    """A backfill can hand one person more distinct days than Lua can unpack at once."""
    days = 4_001
    now = datetime.now(UTC).timestamp()
    views = [
        {"event_id": f"e-day-{n}", "type": "view", "visitor_id": "v8", "item_id": "i1",
         "timestamp": datetime.fromtimestamp(now - (n + 1) * 86_400, UTC).isoformat()}
        for n in range(days)
    ]  # fmt: skip

    async def scenario(redis: Redis) -> None:
        assert (await ingest(redis, *views)).accepted == days
        person = keys.visitor_person("v8")
        assert await redis.hget(keys.person_key("profile", person), "events") == str(days)
        # Each new day dropped the counts older than 91 days: the newest 91 are left.
        assert await redis.hlen(keys.person_key("counts", person)) == 91
        assert await redis.zcard(keys.person_key("seen", person)) == days

    run_against(redis_url, scenario)


def test_a_merge_leaves_behind_the_pending_mark_of_an_id_the_customer_already_logged(
    redis_url: str,
) -> None:
    """The same event reached the customer, and the visitor too with a failed append;
    after the visitor signs in, a retry is a duplicate, not a second stream entry."""
    view = {"event_id": "e-twice", "type": "view", "visitor_id": "v9", "item_id": "i3"}

    async def scenario(redis: Redis) -> None:
        await signed_in(redis, "v9-known", "c9")
        assert (await ingest(redis, {**view, "visitor_id": "v9-known"})).accepted == 1
        await broken(redis, keys.EVENTS_STREAM, view)  # the stream starts again empty
        await signed_in(redis, "v9", "c9")
        retried = await ingest(redis, view)
        assert (retried.accepted, retried.duplicates) == (0, 1)
        assert "e-twice" not in await stream_ids(redis)
        assert not await redis.hexists(keys.person_key("unlogged", keys.customer_person("c9")),
                                       "e-twice")  # fmt: skip

    run_against(redis_url, scenario)

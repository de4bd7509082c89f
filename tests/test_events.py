"""POST /v1/events: storage, idempotency, atomicity, identity linking and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from models.events import EventType
from server.app import create_app
from settings import Settings
from state import keys, logged_events
from state.interactions import decode_interactions, encode_interaction
from tests.conftest import PUBLIC, SECRET
from tests.helpers import send


def profile(client: TestClient, visitor_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/visitors/{visitor_id}", headers=SECRET)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_event_is_stored_in_the_stream_and_the_profile(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    before = redis_client.xlen(keys.EVENTS_STREAM)
    assert send(client, {"type": "view", "visitor_id": visitor_id, "item_id": "i000001"}) == {
        "accepted": 1,
        "duplicates": 0,
    }
    assert redis_client.xlen(keys.EVENTS_STREAM) == before + 1
    shown = profile(client, visitor_id)
    assert shown["events"] == 1
    assert [x["item_id"] for x in shown["recent_items"]] == ["i000001"]


def test_the_stream_keeps_the_event_with_its_time_and_without_its_token(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    sent: list[dict[str, Any]] = [
        {"event_id": f"{visitor_id}-a", "type": "purchase", "visitor_id": visitor_id,
         "items": [{"item_id": "i000004", "quantity": 2, "price": 9.5}],
         "customer_token": "f" * 64, "properties": {"coupon": "X1"}},
        {"type": "view", "visitor_id": visitor_id, "item_id": "i000005",
         "timestamp": "2026-01-02T03:04:05+02:00"},
    ]  # fmt: skip
    before = datetime.now(UTC)
    assert send(client, *sent) == {"accepted": 2, "duplicates": 0}
    newest: Any = redis_client.xrevrange(keys.EVENTS_STREAM, count=2)
    entries: list[tuple[str, dict[str, str]]] = newest[::-1]
    logged = [logged_events.decode(fields) for _, fields in entries]
    records = [event.row for event in logged]
    assert all(event.person == keys.visitor_person(visitor_id) for event in logged)
    stamped = datetime.fromisoformat(records[0].pop("timestamp"))
    assert before <= stamped <= datetime.now(UTC)
    assert records[0] == {k: v for k, v in sent[0].items() if k != "customer_token"}
    assert datetime.fromisoformat(records[1].pop("timestamp")) == datetime(
        2026, 1, 2, 1, 4, 5, tzinfo=UTC
    )
    assert records[1] == {k: v for k, v in sent[1].items() if k != "timestamp"}


def test_the_same_event_id_counts_once(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    purchase = {
        "event_id": f"{visitor_id}-order",
        "type": "purchase",
        "visitor_id": visitor_id,
        "order_id": "o-1",
        "items": [{"item_id": "i000002", "quantity": 2, "price": 25.0}],
    }
    before = redis_client.xlen(keys.EVENTS_STREAM)
    assert send(client, purchase) == {"accepted": 1, "duplicates": 0}
    assert send(client, purchase) == {"accepted": 0, "duplicates": 1}
    assert send(client, purchase, purchase) == {"accepted": 0, "duplicates": 2}
    assert redis_client.xlen(keys.EVENTS_STREAM) == before + 1
    shown = profile(client, visitor_id)
    assert (shown["orders"], shown["lifetime_value"], shown["events"]) == (1, 50.0, 1)


def test_an_id_repeated_within_one_batch_counts_once(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    view = {"event_id": f"{visitor_id}-v", "type": "view", "visitor_id": visitor_id,
            "item_id": "i000003"}  # fmt: skip
    before = redis_client.xlen(keys.EVENTS_STREAM)
    assert send(client, view, view) == {"accepted": 1, "duplicates": 1}
    assert redis_client.xlen(keys.EVENTS_STREAM) == before + 1
    assert profile(client, visitor_id)["events"] == 1


def test_a_batch_with_one_invalid_event_stores_nothing(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    before = redis_client.xlen(keys.EVENTS_STREAM)
    batch = [{"type": "view", "visitor_id": visitor_id, "item_id": f"i{n:06d}"} for n in range(3)]
    batch.append({"type": "view", "visitor_id": visitor_id})  # a view must name its item
    response = client.post("/v1/events", json={"events": batch}, headers=PUBLIC)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_event"
    assert error["index"] == 3
    assert "event 3" in error["message"]
    assert redis_client.xlen(keys.EVENTS_STREAM) == before
    assert client.get(f"/v1/visitors/{visitor_id}", headers=SECRET).status_code == 404


def test_cart_wishlist_and_purchase_shape_the_profile(client: TestClient, visitor_id: str) -> None:
    send(
        client,
        {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": "i000010"},
        {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": "i000011"},
        {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": "i000011"},
        {"type": "remove_from_cart", "visitor_id": visitor_id, "item_id": "i000010"},
        {"type": "wishlist_add", "visitor_id": visitor_id, "item_id": "i000012"},
    )
    assert profile(client, visitor_id)["cart"] == {"i000011": 2}
    send(
        client,
        {
            "type": "purchase",
            "visitor_id": visitor_id,
            "order_id": "o-2",
            "timestamp": "2026-01-05T10:00:00Z",
            "items": [{"item_id": "i000011", "quantity": 2, "price": 30.0}],
        },
        {
            "type": "purchase",
            "visitor_id": visitor_id,
            "order_id": "o-3",
            "timestamp": "2026-02-01T10:00:00Z",
            "value": 20.0,
            "items": [{"item_id": "i000013"}],
        },
    )
    shown = profile(client, visitor_id)
    assert shown["cart"] == {}
    assert shown["wishlist"] == ["i000012"]
    assert shown["purchased"] == ["i000011", "i000013"]
    assert shown["orders"] == 2
    assert (shown["lifetime_value"], shown["average_order_value"]) == (80.0, 40.0)
    assert shown["last_order_id"] == "o-3"


def test_an_anonymous_history_merges_into_the_customer(client: TestClient, visitor_id: str) -> None:
    customer = f"c-{visitor_id}"
    other_device = f"{visitor_id}-phone"
    send(
        client,
        {"type": "view", "visitor_id": visitor_id, "item_id": "i000020"},
        {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": "i000020"},
    )
    send(client, {"type": "signup", "visitor_id": visitor_id, "customer_id": customer,
                  "properties": {"email_opt_in": True}})  # fmt: skip
    send(client, {"type": "view", "visitor_id": other_device, "item_id": "i000021"})
    send(client, {"type": "view", "visitor_id": other_device, "customer_id": customer,
                  "item_id": "i000022"})  # fmt: skip
    # Later events carrying only the visitor id still land on the customer.
    send(client, {"type": "view", "visitor_id": visitor_id, "item_id": "i000023"})

    laptop, phone = profile(client, visitor_id), profile(client, other_device)
    assert laptop["customer_id"] == phone["customer_id"] == customer
    assert laptop["recent_items"] == phone["recent_items"]
    assert {x["item_id"] for x in laptop["recent_items"]} == {
        "i000020",
        "i000021",
        "i000022",
        "i000023",
    }
    assert laptop["cart"] == {"i000020": 1}
    assert laptop["email_opt_in"] is True
    assert laptop["events"] == 6


def test_a_visitor_never_seen_is_404(client: TestClient, visitor_id: str) -> None:
    response = client.get(f"/v1/visitors/{visitor_id}", headers=SECRET)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "visitor_not_found"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"x": value}
    return value


def _view(visitor_id: str, **overrides: Any) -> dict[str, Any]:
    return {"type": "view", "visitor_id": visitor_id, "item_id": "i000001", **overrides}


BAD_BODIES: dict[str, tuple[Any, int]] = {
    "unknown type": ({"type": "teleport", "visitor_id": "v", "item_id": "i"}, 422),
    "missing visitor_id": ({"type": "view", "item_id": "i"}, 422),
    "negative price": (
        {"type": "purchase", "visitor_id": "v", "items": [{"item_id": "i", "price": -5}]},
        422,
    ),
    "absurdly long id": (_view("v" * 10_000), 422),
    "control characters in an id": (_view("a\x00b"), 422),
    "braces in an id": (_view("{other}"), 422),
    "wrong-typed visitor_id": (_view(12345), 422),  # type: ignore[arg-type]
    "wrong-typed items": ({"type": "purchase", "visitor_id": "v", "items": "lots"}, 422),
    "unknown field": (_view("v", colour="red"), 422),
    "future timestamp": (_view("v", timestamp="2999-01-01T00:00:00Z"), 422),
    "bad timestamp": (_view("v", timestamp="yesterday-ish"), 422),
    "timestamp before 1970": (_view("v", timestamp="1969-12-31T23:59:59Z"), 422),
    "timestamp at the edge of time": (_view("v", timestamp="0001-01-01T00:00:00+14:00"), 422),
    "deeply nested properties": (_view("v", properties=_nested(300)), 422),
    "properties too deep to keep": (_view("v", properties=_nested(9)), 422),
    "nan value": ({"type": "review", "visitor_id": "v", "item_id": "i", "value": "NaN"}, 422),
    "a bare list": ([_view("v")], 422),
    "an empty batch": ({"events": []}, 422),
    "a batch with extra keys": ({"events": [_view("v")], "also": 1}, 422),
    "1001 events": ({"events": [_view(f"v{n}") for n in range(1001)]}, 413),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_input_gets_a_json_4xx_and_stores_nothing(
    case: str, client: TestClient, redis_client: redis.Redis
) -> None:
    body, status = BAD_BODIES[case]
    before = redis_client.xlen(keys.EVENTS_STREAM)
    response = client.post("/v1/events", json=body, headers=PUBLIC)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) >= {"code", "message"}
    assert redis_client.xlen(keys.EVENTS_STREAM) == before


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"\xff\xfe",
        b'{"type": "view", "visitor_id": ',
        b'{"type": "view", "visitor_id": "v", "item_id": "i", "value": 1e999}',
        b'{"type": "view", "visitor_id": "v", "item_id": "i", "value": NaN}',
    ],
    ids=repr,
)
def test_malformed_json_is_a_400(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/v1/events", content=raw, headers={**PUBLIC, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_a_body_over_one_megabyte_is_refused(client: TestClient, redis_client: redis.Redis) -> None:
    before = redis_client.xlen(keys.EVENTS_STREAM)
    padding = "x" * 1_100_000
    body = {"type": "search", "visitor_id": "v", "query": padding}
    response = client.post("/v1/events", json=body, headers=PUBLIC)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Any:  # no Content-Length: the limit must still hold
        for _ in range(12):
            yield b" " * 100_000

    response = client.post("/v1/events", content=chunks(), headers=PUBLIC)
    assert response.status_code == 413
    assert redis_client.xlen(keys.EVENTS_STREAM) == before


def test_an_order_seen_on_both_sides_of_a_merge_counts_once(
    client: TestClient, visitor_id: str
) -> None:
    customer = f"c-{visitor_id}"
    order = {"type": "purchase", "order_id": "o-shared", "value": 100.0,
             "items": [{"item_id": "i000030"}]}  # fmt: skip
    send(client, {**order, "visitor_id": f"{visitor_id}-known", "customer_id": customer})
    send(client, {**order, "visitor_id": visitor_id})  # the same order, before login
    send(client, {"type": "view", "visitor_id": visitor_id, "customer_id": customer,
                  "item_id": "i000031"})  # fmt: skip
    shown = profile(client, visitor_id)
    assert (shown["orders"], shown["lifetime_value"]) == (1, 100.0)


def test_two_visitors_signing_in_as_one_customer_in_one_batch_make_one_new_buyer_month(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    """Their merges run together (side by side on a cluster): the customer is new in the
    month of the earliest order either brought, and in no other."""
    customer = keys.customer_person(f"c-{visitor_id}")
    months = {"a": "1999-01", "b": "1999-03"}
    for side, month in months.items():
        send(client, {"type": "purchase", "visitor_id": f"{visitor_id}-{side}",
                      "order_id": f"o-{side}", "value": 10.0, "item_id": "i000040",
                      "timestamp": f"{month}-10T10:00:00Z"})  # fmt: skip
    signs_in = [
        {"type": "signup", "visitor_id": f"{visitor_id}-{side}", "customer_id": f"c-{visitor_id}"}
        for side in months
    ]
    send(client, *signs_in)
    assert customer in redis_client.smembers(keys.new_buyers_key("1999-01"))
    assert customer not in redis_client.smembers(keys.new_buyers_key("1999-03"))
    for month in months.values():
        assert customer in redis_client.smembers(keys.buyers_key(month))
    assert profile(client, f"{visitor_id}-b")["orders"] == 2


def test_a_merge_keeps_the_newest_interactions(client: TestClient, visitor_id: str) -> None:
    customer = f"c-{visitor_id}"
    old = [{"type": "view", "visitor_id": visitor_id, "item_id": f"old-{n}",
            "timestamp": f"2025-01-01T00:{n:02d}:00Z"} for n in range(60)]  # fmt: skip
    new = [{"type": "view", "visitor_id": f"{visitor_id}-b", "customer_id": customer,
            "item_id": f"new-{n}", "timestamp": f"2026-03-01T00:{n:02d}:00Z"}
           for n in range(60)]  # fmt: skip
    send(client, *new)
    send(client, *old)
    send(client, {"type": "signup", "visitor_id": visitor_id, "customer_id": customer,
                  "timestamp": "2025-01-02T00:00:00Z"})  # fmt: skip
    recent = [x["item_id"] for x in profile(client, visitor_id)["recent_items"]]
    assert len(recent) == 100
    assert recent[:60] == [f"new-{n}" for n in reversed(range(60))]
    assert recent[60:] == [f"old-{n}" for n in reversed(range(20, 60))]


def test_repeated_lines_of_one_cart_event_add_up(client: TestClient, visitor_id: str) -> None:
    send(client, {"type": "add_to_cart", "visitor_id": visitor_id,
                  "items": [{"item_id": "i2", "quantity": 2}, {"item_id": "i2", "quantity": 3}],
                  "item_id": "i2"})  # fmt: skip
    assert profile(client, visitor_id)["cart"] == {"i2": 5}


def at(day: int, hour: int = 12) -> str:
    return datetime.fromtimestamp(day * 86400 + hour * 3600, UTC).isoformat()


def test_profile_times_and_event_count_hold_across_batches_and_out_of_order_events(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    today = int(datetime.now(UTC).timestamp() // 86400)
    view = {"type": "view", "visitor_id": visitor_id, "item_id": "i000001"}
    # A cart event flushes the tally in the middle of the batch.
    send(
        client,
        {**view, "timestamp": at(today - 3)},
        {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": "i000002",
         "timestamp": at(today - 2)},
        {**view, "timestamp": at(today - 5)},
    )  # fmt: skip
    send(client, {**view, "timestamp": at(today - 4)})
    stored = redis_client.hgetall(keys.person_key("profile", keys.visitor_person(visitor_id)))
    assert int(stored["events"]) == 4
    assert float(stored["first_seen"]) == (today - 5) * 86400 + 12 * 3600
    assert float(stored["last_seen"]) == (today - 2) * 86400 + 12 * 3600
    assert float(stored["last:add_to_cart"]) == (today - 2) * 86400 + 12 * 3600
    assert "last:view" not in stored  # no rule reads it: campaigns.person.TIMED_EVENT_TYPES


def test_a_new_days_count_clears_every_count_more_than_90_days_older(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    moment = datetime.now(UTC).timestamp() - 10  # one moment for today's events
    day = int(moment // 86400)
    counts_key = keys.person_key("counts", keys.visitor_person(visitor_id))
    view = {"type": "view", "visitor_id": visitor_id, "item_id": "i000001"}
    search = {"type": "search", "visitor_id": visitor_id, "query": "socks"}
    # A sporadic visitor: no later event falls exactly 91 days after an earlier one.
    send(client, {**view, "timestamp": at(day - 200)})
    assert redis_client.hgetall(counts_key) == {}  # out of every window at once
    send(client, {**view, "timestamp": at(day - 90)}, {**search, "timestamp": at(day - 91)})
    assert redis_client.hgetall(counts_key) == {f"view:{day - 90}": "1", f"search:{day - 91}": "1"}
    today = {**view, "timestamp": datetime.fromtimestamp(moment, UTC).isoformat()}
    send(client, today, today)
    send(client, today)
    # The window is the last 91 days: the view of 90 days ago is in it, the search of 91
    # days ago (of another type) is not.
    assert redis_client.hgetall(counts_key) == {f"view:{day}": "3", f"view:{day - 90}": "1"}


def test_the_recent_list_keeps_the_newest_up_to_its_cap(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    cap = 100  # Settings.recent_interactions_cap
    views = [
        {"type": "view", "visitor_id": visitor_id, "item_id": f"i{n:06d}"} for n in range(cap + 7)
    ]
    send(client, *views[:60])
    send(client, *views[60:])
    recent = [x["item_id"] for x in profile(client, visitor_id)["recent_items"]]
    assert recent == [view["item_id"] for view in reversed(views[7:])]
    stored = redis_client.lrange(keys.person_key("recent", keys.visitor_person(visitor_id)), 0, -1)
    assert len(decode_interactions(stored)) == cap  # type: ignore[arg-type]


def test_a_list_written_before_the_pairs_is_rewritten_as_pairs_and_keeps_its_cap(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    cap = 100  # Settings.recent_interactions_cap
    key = keys.person_key("recent", keys.visitor_person(visitor_id))
    start = int(datetime.now(UTC).timestamp()) - 10_000
    # Newest first, as stored: old-1 is the newest of the older entries.
    older = [f"view\told-{n}\t{start - n}.000" for n in range(1, cap + 1)]
    redis_client.rpush(key, *older)
    views = [{"type": "view", "visitor_id": visitor_id, "item_id": f"new-{n}"} for n in range(50)]
    send(client, *views)
    stored: list[str] = redis_client.lrange(key, 0, -1)  # type: ignore[assignment]
    assert not any("\t" in element for element in stored)
    items = [x.item_id for x in decode_interactions(stored)]
    assert items == [f"new-{n}" for n in reversed(range(50))] + [f"old-{n}" for n in range(1, 51)]
    assert decode_interactions(stored)[50].timestamp == start - 1


def test_the_stream_is_trimmed_to_about_its_cap_and_keeps_the_newest(
    settings: Settings, redis_client: redis.Redis, visitor_id: str
) -> None:
    capped = settings.model_copy(update={"stream_max_len": 150})
    views = [
        {"type": "view", "visitor_id": visitor_id, "item_id": f"i{n:06d}"} for n in range(1000)
    ]
    with TestClient(create_app(capped), raise_server_exceptions=False) as client:
        send(client, *views)
    # Trimming with "~" drops whole stream nodes (100 entries each), never below the cap.
    assert 150 <= redis_client.xlen(keys.EVENTS_STREAM) < 150 + 100
    entries: Any = redis_client.xrevrange(keys.EVENTS_STREAM, count=1)
    assert logged_events.decode(entries[0][1]).row["item_id"] == views[-1]["item_id"]


def test_a_batchs_new_orders_add_up_in_their_months_sets_and_totals(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    """Month keys are shared by every test: each month here is this test's own."""
    year = 1971 + int(visitor_id[-4:], 16) % 25  # months no other test writes
    may, june = f"{year}-05", f"{year}-06"

    def order(who: str, order_id: str, value: float, month: str) -> dict[str, Any]:
        return {"type": "purchase", "visitor_id": f"{visitor_id}-{who}", "order_id": order_id,
                "value": value, "item_id": "i000040",
                "timestamp": f"{month}-10T10:00:00Z"}  # fmt: skip

    send(
        client,
        order("a", f"{visitor_id}-1", 10.25, may),
        order("b", f"{visitor_id}-2", 20.5, may),
        order("a", f"{visitor_id}-3", 5.0, may),
        order("a", f"{visitor_id}-1", 10.25, may),  # the same order again: no new order
        order("b", f"{visitor_id}-4", 7.75, june),
    )
    a, b = (keys.visitor_person(f"{visitor_id}-{who}") for who in "ab")
    assert redis_client.smembers(keys.buyers_key(may)) == {a, b}
    assert redis_client.smembers(keys.new_buyers_key(may)) == {a, b}
    assert redis_client.smembers(keys.buyers_key(june)) == {b}
    assert redis_client.smembers(keys.new_buyers_key(june)) == set()
    may_totals = redis_client.hgetall(keys.month_totals_key(may))
    assert int(may_totals["orders"]) == 3
    assert float(may_totals["revenue"]) == pytest.approx(35.75)
    june_totals = redis_client.hgetall(keys.month_totals_key(june))
    assert (int(june_totals["orders"]), float(june_totals["revenue"])) == (1, 7.75)


def stored(*interactions: tuple[str, str, float]) -> list[str]:
    """A recent list as Redis holds it after these LPUSHes: newest first."""
    pushed = [part for i in interactions for part in encode_interaction(*i)]
    return pushed[::-1]


def test_a_recent_list_decodes_to_its_interactions_newest_first() -> None:
    entries = stored(("view", "i1", 1.5), ("add_to_cart", "x y", 2.0), ("view", "i1", 3))
    assert decode_interactions(entries) == [
        ("i1", "view", 3.0), ("x y", "add_to_cart", 2.0), ("i1", "view", 1.0)
    ]  # fmt: skip
    assert decode_interactions([]) == []
    assert decode_interactions(entries[:-1]) == decode_interactions(entries)[:2]  # a lone item
    with pytest.raises(ValueError):
        decode_interactions([*entries, "view\ti2"])


def test_a_stored_interaction_is_a_type_letter_with_the_item_then_whole_seconds() -> None:
    assert encode_interaction("add_to_cart", "i1", 1793025721.987) == ["1793025721", "ai1"]
    letters = [encode_interaction(kind, "i1", 0)[1][:-2] for kind in EventType]
    assert len(set(letters)) == len(EventType)  # every type its own letter
    assert all(len(letter) == 1 for letter in letters)


def test_entries_stored_before_the_pairs_still_decode_alone_and_mixed() -> None:
    oldest = ["purchase\ti1\t1793025721.250", "view\ti2\t1793025600.000"]
    lettered = ["a\ti3\t1793025500"]
    assert decode_interactions(oldest + lettered) == [
        ("i1", "purchase", 1793025721.25),
        ("i2", "view", 1793025600.0),
        ("i3", "add_to_cart", 1793025500.0),
    ]
    newer = stored(("view", "i4", 1793025800), ("search", "i5", 1793025900))
    mixed = decode_interactions([*newer, *oldest, *lettered])
    assert [(i.item_id, i.event_type) for i in mixed] == [
        ("i5", "search"), ("i4", "view"), ("i1", "purchase"), ("i2", "view"),
        ("i3", "add_to_cart"),
    ]  # fmt: skip


def test_a_lone_item_before_an_older_entry_is_skipped_not_misread() -> None:
    """No writer leaves this (a list is made pairs before anything is pushed or trimmed),
    but a decoder that met it must neither raise nor loop."""
    older = "a\ti3\t1793025500"
    assert decode_interactions(["vi1", older]) == [("i3", "add_to_cart", 1793025500.0)]

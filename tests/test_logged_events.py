"""The behaviour stream's entry format: columns that come back as the event was sent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis

from models.events import Event
from settings import Settings
from state import keys, logged_events
from training.backfill import export_history
from training.datafiles import read_events

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def logged(sent: dict[str, Any], person: str, at: datetime = NOW) -> logged_events.LoggedEvent:
    """What a stream entry written for `sent` decodes to."""
    event = Event.model_validate(sent)
    row = logged_events.entry(logged_events.columns(event, at), event.visitor_id, person)
    return logged_events.decode({logged_events.ROW: row})


def test_every_field_comes_back_and_the_token_does_not() -> None:
    sent = {
        "event_id": "e1", "type": "purchase", "visitor_id": "v1", "customer_id": "c1",
        "timestamp": "2026-01-02T03:04:05.000001+02:00", "order_id": "o1", "value": 19.0,
        "currency": "EUR", "items": [{"item_id": "i1", "quantity": 2, "price": 9.5}],
        "properties": {"coupon": "X1", "note": "tab\there"}, "customer_token": "f" * 64,
    }  # fmt: skip
    event = Event.model_validate(sent)
    back = logged(sent, keys.customer_person("c1"), at=event.occurred_at(NOW))
    assert back.row.pop("timestamp") == "2026-01-02T01:04:05.000001+00:00"
    assert back.row == {k: v for k, v in sent.items() if k not in ("timestamp", "customer_token")}
    assert back.timestamp == event.occurred_at(NOW).timestamp()
    assert back.person == "c:c1"


def test_a_view_keeps_its_arrival_time_in_whole_seconds_and_its_visitors_person() -> None:
    back = logged({"type": "view", "visitor_id": "v2", "item_id": "i2"}, keys.visitor_person("v2"))
    assert back.row == {
        "timestamp": "2026-11-23T08:00:00+00:00", "type": "view", "visitor_id": "v2",
        "item_id": "i2",
    }  # fmt: skip
    assert back.person == "v:v2"
    assert back.timestamp == NOW.timestamp()


def test_the_person_is_read_without_decoding_the_event() -> None:
    event = Event.model_validate({"type": "search", "visitor_id": "v3", "query": "red\tshoes"})
    cols = logged_events.columns(event, NOW)
    own = {logged_events.ROW: logged_events.entry(cols, "v3", keys.visitor_person("v3"))}
    linked = {logged_events.ROW: logged_events.entry(cols, "v3", keys.customer_person("c3"))}
    assert logged_events.person_of(own) == "v:v3"
    assert logged_events.person_of(linked) == "c:c3"
    assert logged_events.decode(linked).row["query"] == "red\tshoes"


def test_entries_written_as_json_still_decode() -> None:
    row = {"timestamp": "2026-03-04T05:06:07+00:00", "type": "view", "visitor_id": "v4",
           "item_id": "i4"}  # fmt: skip
    back = logged_events.decode({"person": "c:c4", "event": orjson.dumps(row).decode()})
    assert back == ("c:c4", row, datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp())
    assert logged_events.person_of({"person": "c:c4", "event": "{}"}) == "c:c4"


def test_export_reads_a_stream_of_both_formats(valkey: str, tmp_path: Path) -> None:
    url = f"{valkey}/6"
    connection = redis.Redis.from_url(url, decode_responses=True)
    connection.flushdb()
    old = {"timestamp": "2026-03-04T05:06:07+00:00", "event_id": "old", "type": "view",
           "visitor_id": "v5", "item_id": "i5"}  # fmt: skip
    connection.xadd(keys.EVENTS_STREAM, {"person": "v:v5", "event": orjson.dumps(old)})
    new = Event.model_validate({"event_id": "new", "type": "view", "visitor_id": "v5",
                                "item_id": "i6", "timestamp": "2026-03-05T00:00:00Z"})  # fmt: skip
    columns = logged_events.columns(new, new.occurred_at(NOW))
    row = logged_events.entry(columns, "v5", "v:v5")
    connection.xadd(keys.EVENTS_STREAM, {logged_events.ROW: row})
    assert export_history(Settings(redis_url=url), tmp_path / "out.jsonl") == 2
    back = list(read_events(tmp_path / "out.jsonl"))
    assert back[0] == old
    assert Event.model_validate(back[1]) == new
    connection.flushdb()
    connection.close()

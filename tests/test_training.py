"""The offline jobs: the synthetic store, training, and moving history in and out of Redis."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from models.bundle import Bundle
from models.events import Event
from settings import Settings
from state import keys
from tests.conftest import TEST_STORE
from training.backfill import export_history, load_history
from training.datafiles import read_events
from training.generate import StoreShape, generate_store


def test_the_store_is_seeded_exact_and_valid(store_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_store(again, TEST_STORE)
    for name in ("events.jsonl.gz", "catalog.jsonl.gz"):
        assert gzip.decompress((store_dir / name).read_bytes()) == gzip.decompress(
            (again / name).read_bytes()
        )
    rows = list(read_events(store_dir / "events.jsonl.gz"))
    assert len(rows) == TEST_STORE.events
    events = [Event.model_validate(row) for row in rows]
    kinds = {event.type.value for event in events}
    assert {"view", "add_to_cart", "purchase", "signup"} <= kinds
    stamps = [event.timestamp for event in events if event.timestamp]
    assert (max(stamps) - min(stamps)).days > 300  # spread over twelve months
    buyers: dict[str, int] = {}
    for event in events:
        if event.type.value == "purchase":
            person = event.customer_id or event.visitor_id
            buyers[person] = buyers.get(person, 0) + 1
    assert sum(1 for n in buyers.values() if n > 1) > 50  # repeat buyers exist


def test_a_different_seed_gives_a_different_store(store_dir: Path, tmp_path: Path) -> None:
    other = StoreShape(**{**TEST_STORE.__dict__, "seed": 8, "events": 2000})
    generate_store(tmp_path, other)
    first = next(read_events(store_dir / "events.jsonl.gz"))
    assert next(read_events(tmp_path / "events.jsonl.gz")) != first


def test_the_bundle_manifest_describes_the_training_run(bundle: Bundle) -> None:
    manifest = bundle.manifest
    assert manifest["version"] == bundle.version
    assert manifest["rows"]["events"] == TEST_STORE.events
    assert manifest["rows"]["items"] == bundle.n_items == TEST_STORE.items
    assert manifest["index"] == "exact"
    assert manifest["model"] == "als"
    assert manifest["params"]["als"]["factors"] == bundle.item_factors.shape[1]
    first = datetime.fromisoformat(manifest["data_range"]["first"])
    assert first < datetime.fromisoformat(manifest["data_range"]["last"]) <= datetime.now(UTC)
    assert manifest["metrics"]["train_seconds"] > 0


def test_bought_together_finds_items_of_the_same_line(bundle: Bundle) -> None:
    same_line = 0
    checked = 0
    for index in bundle.trending[:50]:
        partners, _ = bundle.bought_together(int(index))
        if len(partners):
            checked += 1
            line = bundle.items[index]["attributes"]["line"]
            same_line += bundle.items[partners[0]]["attributes"]["line"] == line
    assert checked >= 30 and same_line / checked > 0.6


def test_parquet_and_jsonl_read_the_same(store_dir: Path, tmp_path: Path) -> None:
    rows = list(read_events(store_dir / "events.jsonl.gz"))[:500]
    columns = sorted({key for row in rows for key in row})
    table = pa.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows])
    pq.write_table(table, tmp_path / "events.parquet")
    assert list(read_events(tmp_path / "events.parquet")) == rows


@pytest.mark.parametrize("database", [5])
def test_load_then_export_round_trips_history(
    store_dir: Path, tmp_path: Path, valkey: str, database: int
) -> None:
    url = f"{valkey}/{database}"
    connection = redis.Redis.from_url(url, decode_responses=True)
    connection.flushdb()
    small = tmp_path / "small.jsonl"
    rows = list(read_events(store_dir / "events.jsonl.gz"))[:3000]
    small.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    settings = Settings(redis_url=url, campaigns_file=None)
    counts = load_history(settings, small, store_dir / "catalog.jsonl.gz")
    assert counts == {"items": TEST_STORE.items, "accepted": 3000, "duplicates": 0, "rejected": 0}
    assert load_history(settings, small, None)["duplicates"] == 3000  # event ids make it idempotent
    example = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"
    with_campaigns = Settings(redis_url=url, campaigns_file=example)
    segmented = load_history(with_campaigns, small, None)["segmented"]
    assert segmented == len({row["visitor_id"] for row in rows})
    sizes = {k: connection.scard(k) for k in connection.scan_iter(keys.segment_key("*"))}
    assert sizes and sum(sizes.values()) > 0
    assert connection.xlen(keys.EVENTS_STREAM) == 3000
    exported = export_history(settings, tmp_path / "out.jsonl.gz")
    assert exported == 3000
    back = list(read_events(tmp_path / "out.jsonl.gz"))
    assert [r["event_id"] for r in back] == [r["event_id"] for r in rows]
    assert Event.model_validate(back[0]) == Event.model_validate(rows[0])
    connection.flushdb()
    connection.close()


def test_training_resolves_people_as_the_server_does() -> None:
    from training.interactions import read_log

    def view(visitor: str, item: str, customer: str | None = None) -> dict[str, str]:
        event = {"type": "view", "visitor_id": visitor, "item_id": item,
                 "timestamp": "2026-01-01T00:00:00Z"}  # fmt: skip
        return event | ({"customer_id": customer} if customer else {})

    events = [
        view("laptop", "a"),  # anonymous, merged into c1 at the first link
        view("laptop", "b", customer="c1"),
        view("laptop", "c"),  # follows the link
        view("laptop", "d", customer="c2"),  # relinked: no merge
        view("laptop", "e"),  # follows the latest link
        view("42", "a"),  # a visitor and a customer may share an id string
        view("someone", "b", customer="42"),
    ]
    log = read_log(events, {item: n for n, item in enumerate("abcde")})
    rows_of = {
        person: sorted("abcde"[i] for i in log.items[log.people == n])
        for n, person in enumerate(log.person_ids)
    }
    assert rows_of == {"c:c1": ["a", "b", "c"], "c:c2": ["d", "e"], "v:42": ["a"], "c:42": ["b"]}

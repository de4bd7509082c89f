"""`load` and `export`: moving history between event files and Redis.

`load` stores events through the very ingest path the API uses, so a backfilled
profile is exactly what live traffic would have built. `export` writes the behaviour
stream back out as an events file for training.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from tqdm import tqdm

from campaigns.config import load_campaigns
from models.events import Event
from settings import Settings
from state import catalog as catalog_store
from state import keys, logged_events
from state.connection import open_client, redis_url_or_embedded
from state.ingest import EventStore
from state.people import PeopleStore
from state.privacy import erased_digests, is_erased
from state.streams import stream_entries
from training.datafiles import read_catalog, read_events, write_jsonl

log = logging.getLogger(__name__)
BATCH = 1000


def load_history(
    settings: Settings, events_path: Path, catalog_path: Path | None
) -> dict[str, int]:
    return _with_redis(settings, lambda redis: _load(redis, settings, events_path, catalog_path))


def export_history(settings: Settings, out: Path) -> int:
    return _with_redis(settings, lambda redis: _export(redis, out, settings.privacy_secret))


def _with_redis(settings: Settings, job: Any) -> Any:
    url, embedded = redis_url_or_embedded(settings)

    async def run() -> Any:
        redis = await open_client(url)
        try:
            return await job(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    finally:
        if embedded is not None:
            embedded.stop()


async def _load(
    redis: Redis, settings: Settings, events_path: Path, catalog_path: Path | None
) -> dict[str, int]:
    counts = {"items": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    if catalog_path is not None:
        items = read_catalog(catalog_path)
        for batch in _batches(tqdm(items, desc="loading catalog", unit="item")):
            counts["items"] += await catalog_store.upsert_items(redis, batch)
    store = EventStore(redis, settings)
    visitors: set[str] = set()
    rows = tqdm(read_events(events_path), desc="loading events", unit="ev", unit_scale=True)
    for batch in _batches(rows):
        events = list(_valid_events(batch, counts))
        visitors.update(event.visitor_id for event in events)
        result = await store.ingest(events)
        counts["accepted"] += result.accepted
        counts["duplicates"] += result.duplicates
    if settings.campaigns_file is not None:
        counts["segmented"] = await _segment(redis, settings.campaigns_file, visitors)
    return counts


async def _segment(redis: Redis, campaigns_file: Path, visitors: set[str]) -> int:
    """Evaluate everyone loaded, so segment sizes reflect the history from the start."""
    campaigns = load_campaigns(campaigns_file)
    _, stored = await catalog_store.all_items(redis)
    items = {item["item_id"]: item for item in stored}
    people = PeopleStore(redis)
    now = time.time()
    for visitor_id in tqdm(sorted(visitors), desc="segmenting", unit="visitor"):
        await people.evaluate(visitor_id, campaigns, items.get, now, with_offers=False)
    return len(visitors)


def _valid_events(rows: list[dict[str, Any]], counts: dict[str, int]) -> Iterator[Event]:
    for row in rows:
        try:
            yield Event.model_validate(row)
        except ValidationError as exc:
            counts["rejected"] += 1
            log.warning(
                "skipping an invalid event %s: %s", row.get("event_id"), exc.errors()[0]["msg"]
            )


async def _export(redis: Redis, out: Path, secret: str) -> int:
    rows = [row async for row in _stream_rows(redis, secret)]
    return write_jsonl(out, rows)


async def _stream_rows(redis: Redis, secret: str) -> AsyncIterator[dict[str, Any]]:
    """The stream's events, minus anyone erased since (their ids are kept hashed), and
    minus repeats of an event id (a retry after a failed write may append one twice)."""
    total = await redis.xlen(keys.EVENTS_STREAM)
    erased = await erased_digests(redis)
    exported: set[str] = set()
    with tqdm(total=total, desc="exporting events", unit="ev", unit_scale=True) as bar:
        async for entries in stream_entries(redis, keys.EVENTS_STREAM, BATCH):
            for _, fields in entries:
                row = logged_events.decode(fields).row
                event_id = row.get("event_id")
                if event_id in exported or (erased and is_erased(row, erased, secret)):
                    continue
                if event_id:
                    exported.add(event_id)
                yield row
            bar.update(len(entries))


def _batches(rows: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch

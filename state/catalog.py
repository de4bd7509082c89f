"""The live catalog in Redis, and the change log each server tails to stay current.

Items live in one hash. Every upsert also appends the changed items to a capped log
stream and bumps a revision counter in the same transaction; a server reads the counter
in the pipeline it already sends per request and, when it moved, reads only the new
log entries. So a product that goes out of stock stops being recommended on the very
next request, on every replica, without reloading the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from state import keys

CATALOG_LOG_MAX_LEN = 100_000
SCAN_BATCH = 1000


async def upsert_items(redis: Redis, items: Iterable[dict[str, Any]]) -> int:
    """Store items (merged over what is stored) and log the change; return the count."""
    items = list(items)
    if not items:
        return 0
    ids = [item["item_id"] for item in items]

    async def merge_and_write(pipe: Pipeline) -> None:
        # WATCH is on: if another upsert lands between this read and the write, EXEC
        # fails and redis-py runs this again, so concurrent partial updates never undo
        # each other (an out-of-stock flag is never lost to a price change).
        stored = await pipe.hmget(keys.CATALOG_ITEMS, ids)
        merged = [
            {**(orjson.loads(old) if old else {}), **item}
            for old, item in zip(stored, items, strict=True)
        ]
        pipe.multi()
        pipe.hset(keys.CATALOG_ITEMS, mapping={i["item_id"]: orjson.dumps(i) for i in merged})
        pipe.xadd(
            keys.CATALOG_LOG,
            {"items": orjson.dumps(merged)},
            maxlen=CATALOG_LOG_MAX_LEN,
            approximate=True,
        )
        pipe.incr(keys.CATALOG_REV)

    await redis.transaction(merge_and_write, keys.CATALOG_ITEMS)
    return len(items)


async def revision(redis: Redis) -> str | None:
    """The catalog's revision counter: it moves with every upsert."""
    value = await redis.get(keys.CATALOG_REV)
    return str(value) if value is not None else None


async def get_item(redis: Redis, item_id: str) -> dict[str, Any] | None:
    raw = await redis.hget(keys.CATALOG_ITEMS, item_id)
    return orjson.loads(raw) if raw else None


async def all_items(redis: Redis) -> tuple[str, list[dict[str, Any]]]:
    """Every stored item, with the log position they are current up to."""
    last = await redis.xrevrange(keys.CATALOG_LOG, count=1)
    position = str(last[0][0]) if last else "0-0"
    items = [
        orjson.loads(raw) async for _, raw in redis.hscan_iter(keys.CATALOG_ITEMS, count=SCAN_BATCH)
    ]
    return position, items


async def changes_since(redis: Redis, position: str) -> tuple[str, list[dict[str, Any]] | None]:
    """Items changed after `position`, or None when the log no longer reaches back that far."""
    first = await redis.xrange(keys.CATALOG_LOG, count=1)
    if first and position != "0-0" and _id_tuple(str(first[0][0])) > _id_tuple(position):
        return position, None
    entries = await redis.xrange(keys.CATALOG_LOG, min=f"({position}") or []
    items: list[dict[str, Any]] = []
    for entry_id, fields in entries:
        position = str(entry_id)
        items.extend(orjson.loads((fields or {})["items"]))
    return position, items


def _id_tuple(entry_id: str) -> tuple[int, int]:
    millis, seq = entry_id.split("-")
    return int(millis), int(seq)

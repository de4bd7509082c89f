"""Reading a stream through a consumer group, at least once, surviving dead consumers."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError


async def ensure_group(redis: Redis, stream: str, group: str, start: str) -> None:
    """Create the group (reading from `start`: "0" everything, "$" only what comes next)."""
    try:
        await redis.xgroup_create(stream, group, start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def take_batch(
    redis: Redis, stream: str, group: str, consumer: str, count: int, claim_idle_ms: int
) -> list[tuple[str, dict[str, str]]]:
    """Entries a consumer silent for `claim_idle_ms` left pending, then new ones.

    The caller acknowledges each entry once handled; an entry trimmed from the stream
    arrives with empty fields and should simply be acknowledged.
    """
    claimed: Any = await redis.xautoclaim(stream, group, consumer, claim_idle_ms, "0-0", count)
    entries: list[Any] = list(claimed[1])
    fresh: Any = await redis.xreadgroup(group, consumer, {stream: ">"}, count=count)
    for _, stream_entries in fresh or []:
        entries.extend(stream_entries)
    return entries

"""Reading a whole stream in pages, oldest first, without holding it in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis

PAGE = 1000


async def stream_entries(
    redis: Redis, key: str, page: int = PAGE
) -> AsyncIterator[list[tuple[str, dict[str, str]]]]:
    """Pages of (entry id, fields); entries added while reading are included."""
    position = "-"
    while True:
        entries = await redis.xrange(key, min=position, count=page)
        if not entries:
            return
        yield [
            (str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()})
            for entry_id, fields in entries
        ]
        position = f"({entries[-1][0]!s}"

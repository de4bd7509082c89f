"""Answering many things at once without opening a connection per thing.

A batch of 1000 recipients gathered all at once asks Redis for 1000 connections in the
same instant; a cluster client opens them rather than queueing (a single server's pool
queues), and the connect storm itself becomes the failure. So fan-out is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# In flight at once per fan-out: enough to keep Redis busy from one process.
FANOUT_LIMIT = 32


async def map_bounded(
    work: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int = FANOUT_LIMIT
) -> list[R]:
    """`work` over `items`, at most `limit` at a time; results in the items' order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))

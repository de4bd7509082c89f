"""Segment membership in Redis: who is in each segment now, and how many."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from state import keys


async def store_membership(
    redis: Redis, person: str, before: frozenset[str], now: Iterable[str]
) -> None:
    """Move the person between segment sets; nothing is written when nothing changed."""
    after = frozenset(now)
    if after == before:
        return
    pipe = redis.pipeline(transaction=False)
    for name in before - after:
        pipe.srem(keys.segment_key(name), person)
        pipe.srem(keys.person_key("segments", person), name)
    for name in after - before:
        pipe.sadd(keys.segment_key(name), person)
        pipe.sadd(keys.person_key("segments", person), name)
    await pipe.execute()


async def segment_sizes(redis: Redis, names: list[str]) -> dict[str, int]:
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.scard(keys.segment_key(name))
    return dict(zip(names, await pipe.execute(), strict=True))

"""Segment membership in Redis: who is in each segment now, and how many."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from state import keys


async def store_membership(
    redis: Redis, person: str, before: frozenset[str], now: Iterable[str]
) -> None:
    """Move the person between segment sets; nothing is written when nothing changed."""
    await store_memberships(redis, [(person, before, frozenset(now))])


async def store_memberships(
    redis: Redis, moves: Iterable[tuple[str, frozenset[str], frozenset[str]]]
) -> None:
    """Move each (person, segments before, segments now) between segment sets, in one
    pipeline for all of them; nothing is sent when nobody moved."""
    pipe = redis.pipeline(transaction=False)
    for person, before, after in moves:
        for name in before - after:
            pipe.srem(keys.segment_key(name), person)
            pipe.srem(keys.person_key("segments", person), name)
        for name in after - before:
            pipe.sadd(keys.segment_key(name), person)
            pipe.sadd(keys.person_key("segments", person), name)
    if len(pipe):
        await pipe.execute()


async def segment_sizes(redis: Redis, names: list[str]) -> dict[str, int]:
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.scard(keys.segment_key(name))
    return dict(zip(names, await pipe.execute(), strict=True))

"""Which calls may share a script: one hash slot on a Redis Cluster, anything on one server.

Scripts touch the keys of the persons they are handed and nothing else. A cluster runs a
script on the node of its first key and refuses keys of other nodes, so there each call
carries the persons of one slot; a single server takes a whole batch in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

T = TypeVar("T", bound=Hashable)


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


def slot_groups(redis: Redis, things: Iterable[T], key_of: Callable[[T], str]) -> list[list[T]]:
    """`things` in groups whose keys share a slot (one group on a single server), in order."""
    things = list(things)
    if not things:
        return []
    if not is_cluster(redis):
        return [things]
    groups: dict[int, list[T]] = {}
    for thing in things:
        groups.setdefault(key_slot(key_of(thing).encode()), []).append(thing)
    return list(groups.values())

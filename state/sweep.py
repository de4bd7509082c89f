"""A walk over everyone with state, a batch at a time, resumable between calls.

The worker re-evaluates segments that change with time alone ("lapsed") by visiting
every person now and then. It finds them by SCANning for profile keys rather than
keeping a set of everyone: such a set costs about 60 bytes a person and, on a Redis
Cluster, sits whole on one node. SCAN returns every key that exists for a whole pass at
least once (a key may come twice), which is what a sweep needs. On a cluster each
primary is scanned in turn, with a cursor of its own.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from state import keys

# Keys a person holds, roughly: SCAN's COUNT is in keys looked at, not keys matched.
KEYS_PER_PERSON = 5
SINGLE = ""  # the one "node" of a single server


class PeopleWalk:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._cursors: dict[str, int] = {}  # node -> cursor; a node missing starts over
        self._node = 0  # the cluster primary being scanned, by position

    async def next_batch(self, people: int) -> list[str]:
        """About `people` more persons (fewer or none at the end of a node's pass)."""
        node = self._current_node()
        cursor, found = await self._scan(node, self._cursors.get(node, 0), people)
        if cursor == 0:  # this node's pass is over: the next call starts the next node's
            self._cursors.pop(node, None)
            self._node += 1
        else:
            self._cursors[node] = cursor
        return [keys.person_of_profile(key) for key in found]

    def _current_node(self) -> str:
        if not isinstance(self._redis, RedisCluster):
            return SINGLE
        names = sorted(node.name for node in self._redis.get_primaries())
        self._node %= len(names)
        return names[self._node]

    async def _scan(self, node: str, cursor: int, people: int) -> tuple[int, list[str]]:
        count = people * KEYS_PER_PERSON
        if isinstance(self._redis, RedisCluster):
            target = self._redis.get_node(node_name=node)
            cursors, found = await self._redis.scan(
                cursor, keys.PROFILE_PATTERN, count, "hash", target_nodes=target
            )
            return int(cursors[node]), [str(key) for key in found]
        next_cursor, found = await self._redis.scan(cursor, keys.PROFILE_PATTERN, count, "hash")
        return int(next_cursor), [str(key) for key in found]

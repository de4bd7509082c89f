"""A walk over everyone with state, a batch at a time, resumable between calls.

The worker re-evaluates segments that change with time alone ("lapsed") by visiting
every person now and then. It finds them by SCANning for profile keys rather than
keeping a set of everyone: such a set costs about 60-75 bytes a person and, on a Redis
Cluster, sits whole on one node. SCAN returns every key that exists for a whole pass at
least once (a key may come twice), which is what a sweep needs. On a cluster each
primary is scanned in turn, with a cursor of its own; a pass over a node whose slots
move meanwhile may miss some people until the next pass.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError, ConnectionError, TimeoutError

from state import keys

# Keys a person holds, roughly: SCAN's COUNT is in keys looked at, not keys matched.
KEYS_PER_PERSON = 5
SINGLE = ""  # the one "node" of a single server
# A scan aimed at one cluster node is not retried by redis-py: the walk gives up that
# node's pass and goes on with the next, rather than stopping the worker.
NODE_FAILURES = (ConnectionError, TimeoutError, ClusterDownError)


class PeopleWalk:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._cursors: dict[str, int] = {}  # node -> cursor; a node missing starts over
        self._node = SINGLE  # the node being scanned (a cluster primary's name)

    async def next_batch(self, people: int) -> list[str]:
        """About `people` more persons (fewer or none at the end of a node's pass)."""
        node = self._node = self._current_node()
        try:
            cursor, found = await self._scan(node, self._cursors.get(node, 0), people)
        except NODE_FAILURES:
            if not isinstance(self._redis, RedisCluster):
                raise
            cursor, found = 0, []
        if cursor == 0:  # this node's pass is over: the next call starts the next node's
            self._cursors.pop(node, None)
            self._node = self._next_node(node)
        else:
            self._cursors[node] = cursor
        return [keys.person_of_profile(key) for key in found]

    def _primaries(self) -> list[str]:
        assert isinstance(self._redis, RedisCluster)
        names = sorted(node.name for node in self._redis.get_primaries())
        # A node that is no longer a primary leaves its cursor behind.
        self._cursors = {name: c for name, c in self._cursors.items() if name in names}
        return names

    def _current_node(self) -> str:
        if not isinstance(self._redis, RedisCluster):
            return SINGLE
        names = self._primaries()
        return self._node if self._node in names else self._next_node(self._node, names)

    def _next_node(self, node: str, names: list[str] | None = None) -> str:
        """The primary after `node` in name order, around; any name works as a start."""
        if not isinstance(self._redis, RedisCluster):
            return SINGLE
        names = names if names is not None else self._primaries()
        if not names:  # no primary known right now: the next call looks again
            return SINGLE
        return next((name for name in names if name > node), names[0])

    async def _scan(self, node: str, cursor: int, people: int) -> tuple[int, list[str]]:
        count = people * KEYS_PER_PERSON
        if isinstance(self._redis, RedisCluster):
            target = self._redis.get_node(node_name=node)
            if target is None:  # gone since the walk chose it
                return 0, []
            cursors, found = await self._redis.scan(
                cursor, keys.PROFILE_PATTERN, count, "hash", target_nodes=target
            )
            return int(cursors[node]), [str(key) for key in found]
        next_cursor, found = await self._redis.scan(cursor, keys.PROFILE_PATTERN, count, "hash")
        return int(next_cursor), [str(key) for key in found]

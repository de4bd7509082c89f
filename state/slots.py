"""Which calls may share a script: one hash slot on a Redis Cluster, anything on one server.

Scripts touch the keys of the persons they are handed and nothing else. A cluster runs a
script on the node of its first key and refuses keys of other nodes, so there each call
carries the persons of one slot; a single server takes a whole batch in one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from state.fanout import map_bounded
from state.multiplex import Command, Multiplexed

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


async def per_slot(
    redis: Redis, script: AsyncScript, keys: Sequence[str], argv: Sequence[Any] = ()
) -> list[Any]:
    """Run a script that takes KEYS with one ARGV each (or none) and answers one reply
    per key: once per hash slot, side by side (once in all on a single server). The
    replies line up with `keys`."""
    groups = slot_groups(redis, range(len(keys)), lambda index: keys[index])

    async def call(group: list[int]) -> Any:
        return await script(
            keys=[keys[i] for i in group], args=[argv[i] for i in group] if argv else []
        )

    replies = await map_bounded(call, groups)
    lined_up: list[Any] = [None] * len(keys)
    for group, reply in zip(groups, replies, strict=True):
        for index, value in zip(group, reply, strict=True):
            lined_up[index] = value
    return lined_up


async def script_and_reads(
    redis: Redis,
    script: AsyncScript,
    keys: Sequence[str],
    args: Sequence[Any],
    reads: Sequence[Command],
    lane: Multiplexed | None = None,
) -> tuple[Any, list[Any]]:
    """Run a script and some plain commands in one round trip: the script's reply and
    the commands' replies. A cluster refuses scripts in pipelines, so there the two go
    side by side instead, each to its own node. `lane`, where given, carries the round
    trip instead of a pipeline (see state/multiplex.py)."""
    if is_cluster(redis):
        pipe = redis.pipeline(transaction=False)
        for command in reads:
            pipe.execute_command(*command)
        reply, replies = await asyncio.gather(script(keys=keys, args=args), pipe.execute())
        return reply, list(replies)
    evalsha = ("EVALSHA", script.sha, len(keys), *keys, *args)
    replies = await _pipelined(redis, script, [evalsha, *reads], lane)
    return replies[0], replies[1:]


async def script_each(
    redis: Redis,
    script: AsyncScript,
    calls: Sequence[tuple[Sequence[str], Sequence[Any]]],
    lane: Multiplexed | None = None,
) -> list[Any]:
    """One run of the script per (keys, args): pipelined on a single server (one round
    trip for all), side by side on a cluster, which refuses scripts in pipelines. `lane`
    may carry the round trip of a script that only reads (it resends after a dropped
    connection)."""
    if is_cluster(redis):  # bounded: a cluster client opens a connection per call in flight

        async def call(keys_and_args: tuple[Sequence[str], Sequence[Any]]) -> Any:
            return await script(keys=keys_and_args[0], args=keys_and_args[1])

        return await map_bounded(call, calls)
    commands = [("EVALSHA", script.sha, len(k), *k, *a) for k, a in calls]
    return await _pipelined(redis, script, commands, lane)


async def _pipelined(
    redis: Redis,
    script: AsyncScript,
    commands: Sequence[Command],
    lane: Multiplexed | None = None,
) -> list[Any]:
    """Execute `commands`, which call `script` by its hash; a restarted server that lost
    the script gets it loaded, and the commands run again."""
    try:
        return await execute(redis, commands, lane)
    except NoScriptError:
        await redis.script_load(script.script)
        return await execute(redis, commands, lane)


async def execute(
    redis: Redis, commands: Sequence[Command], lane: Multiplexed | None = None
) -> list[Any]:
    """Plain commands in one round trip: over `lane` where given (reads only), else a
    pipeline. On a cluster the pipeline splits them by node."""
    if lane is not None:
        return await lane.execute(commands)
    pipe = redis.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute())

"""Journey steps in Redis: scheduled by due time, cancelled by journey, emitted once.

The schedule and the outbox are shared; a step's claim is made in its person's slot."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from campaigns.journeys import Step
from state import keys

_CLAIM = resources.files("state").joinpath("emit.lua").read_text()
SENT_TTL_SECONDS = 30 * 24 * 3600
CLAIM_KINDS = ("sent", "sending", "messages")


def message_id(step: Step) -> str:
    """Stable for the step: the same trigger always yields the same message id."""
    return hashlib.sha256(step.member.encode()).hexdigest()[:32]


class JourneyStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)

    async def schedule(self, steps: tuple[Step, ...]) -> None:
        """Idempotent: scheduling the same step again changes nothing."""
        if not steps:
            return
        pipe = self._redis.pipeline(transaction=False)
        for step in steps:
            pipe.zadd(keys.JOURNEY_DUE, {step.member: step.due})
            pipe.sadd(keys.person_key("journeys", step.person), step.member)
        await pipe.execute()

    async def cancel(self, person: str, journeys: tuple[str, ...], before: float) -> None:
        """Drop the person's pending steps of these journeys that began before `before`
        (a replayed old event must not void what newer events scheduled)."""
        if not journeys:
            return
        pending_key = keys.person_key("journeys", person)
        pending = [
            Step.parse(str(member), 0.0) for member in await self._redis.smembers(pending_key)
        ]
        void = [
            step.member
            for step in pending
            if step.journey in journeys and _began_before(step.anchor, before)
        ]
        if void:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrem(keys.JOURNEY_DUE, *void)
            pipe.srem(pending_key, *void)
            await pipe.execute()

    async def due(self, now: float, limit: int = 100) -> list[Step]:
        found: Any = await self._redis.zrangebyscore(
            keys.JOURNEY_DUE, "-inf", now, start=0, num=limit, withscores=True
        )
        return [Step.parse(str(member), float(due)) for member, due in found]

    async def drop(self, step: Step) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(keys.JOURNEY_DUE, step.member)
        pipe.srem(keys.person_key("journeys", step.person), step.member)
        pipe.srem(keys.person_key("sending", step.person), message_id(step))
        await pipe.execute()

    async def emit(self, step: Step, fields: dict[str, Any], now: float, weekly_cap: int) -> bool:
        """Append the step's message to the outbox unless it was emitted before or the
        person's weekly cap (0: none) is reached; either way the step is done."""
        identity = message_id(step)
        claim = {
            "member": step.member,
            "id": identity,
            "now": now,
            "cap": weekly_cap,
            "sent_ttl": SENT_TTL_SECONDS,
            "keys": {kind: keys.person_key(kind, step.person) for kind in CLAIM_KINDS},
        }
        pending = keys.person_key("journeys", step.person)
        outcome = int(await self._claim(keys=[pending], args=[orjson.dumps(claim)]))
        if outcome == 1:
            message: dict[Any, Any] = {"message_id": identity, **fields}
            await self._redis.xadd(keys.OUTBOX_STREAM, message)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(keys.JOURNEY_DUE, step.member)
        pipe.srem(pending, step.member)
        pipe.srem(keys.person_key("sending", step.person), identity)
        await pipe.execute()
        return outcome == 1

    async def postpone(self, step: Step, until: float) -> None:
        await self._redis.zadd(keys.JOURNEY_DUE, {step.member: until})


def _began_before(anchor: str, moment: float) -> bool:
    """Anchors that are times compare; others (a category, an item) always qualify."""
    try:
        return float(anchor) < moment
    except ValueError:
        return True

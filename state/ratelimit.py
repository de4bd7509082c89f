"""Rate limits kept in Redis, so that every replica counts against the same buckets.

Asking Redis on every request would cost a round trip each time, so a server process
takes a small lease of tokens at once (a twentieth of the burst, at least one) and
spends it locally; it goes back to Redis when the lease runs out. The bucket in Redis
stays the authority: a client can get ahead of it by at most the leases the processes
hold, and with small bursts (a lease of one) the limit is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis

from state import keys

_SCRIPT = resources.files("state").joinpath("ratelimit.lua").read_text()
LEASE_SHARE = 0.05
MAX_LEASES = 100_000  # distinct buckets held locally before the table is dropped


@dataclass(frozen=True)
class Limit:
    rate: float  # requests a second
    burst: float  # the most a client may send at once after a quiet spell

    @property
    def lease(self) -> int:
        return max(1, int(self.burst * LEASE_SHARE))


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._redis = redis
        self._leases: dict[str, int] = {}
        self._refilling: dict[str, asyncio.Lock] = {}
        self._refused: dict[str, float] = {}  # bucket -> when Redis said it refills

    async def wait_seconds(self, buckets: list[tuple[str, Limit]]) -> float:
        """0 when every bucket had a token (each then spent one), else how long until
        the emptiest refills. Buckets whose lease ran out are refilled in one trip."""
        now = time.monotonic()
        refused = [
            until - now for bucket, _ in buckets if (until := self._refused.get(bucket, 0)) > now
        ]
        if refused:  # known empty: a flooding client costs no Redis trip
            return max(refused)
        waits: list[float] = []
        empty = sorted(bucket for bucket, _ in buckets if self._leases.get(bucket, 0) < 1)
        if empty:
            # One refill per bucket at a time: concurrent requests that all found its
            # lease empty must not each take one, or together they would drain it.
            # Other clients' buckets refill meanwhile. Locks go in a fixed order.
            async with contextlib.AsyncExitStack() as held:
                for bucket in empty:
                    await held.enter_async_context(self._lock(bucket))
                waits = await self._refill(buckets)
        if waits:
            return max(waits)
        for bucket, _ in buckets:
            self._leases[bucket] -= 1
        return 0.0

    def _lock(self, bucket: str) -> asyncio.Lock:
        lock = self._refilling.get(bucket)
        if lock is None:
            lock = self._refilling[bucket] = asyncio.Lock()
        return lock

    async def _refill(self, buckets: list[tuple[str, Limit]]) -> list[float]:
        empty = [(bucket, limit) for bucket, limit in buckets if self._leases.get(bucket, 0) < 1]
        waits = []
        if empty:
            # Side by side rather than pipelined: each bucket is its own hash slot.
            answers = await asyncio.gather(
                *(
                    self._script(keys=[bucket], args=[limit.rate, limit.burst, limit.lease])
                    for bucket, limit in empty
                )
            )
            if len(self._leases) > MAX_LEASES:
                self._leases.clear()
                self._refused.clear()
                self._refilling = {b: lock for b, lock in self._refilling.items() if lock.locked()}
            for (bucket, _), (granted, wait) in zip(empty, answers, strict=True):
                if int(granted):
                    self._leases[bucket] = self._leases.get(bucket, 0) + int(granted)
                else:
                    waits.append(float(wait))
                    self._refused[bucket] = time.monotonic() + float(wait)
        return waits


def key_bucket(api_key: str) -> str:
    """Per API key, named by a digest: keys never appear in Redis."""
    return keys.RATE_BUCKET_TEMPLATE % ("k:" + hashlib.sha256(api_key.encode()).hexdigest()[:16])


def ip_bucket(address: str) -> str:
    return keys.RATE_BUCKET_TEMPLATE % ("ip:" + address)

"""Rate limits kept in Redis, so that every replica counts against the same buckets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis

from state import keys

_SCRIPT = resources.files("state").joinpath("ratelimit.lua").read_text()


@dataclass(frozen=True)
class Limit:
    rate: float  # requests a second
    burst: float  # the most a client may send at once after a quiet spell


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._redis = redis

    async def wait_seconds(self, buckets: list[tuple[str, Limit]]) -> float:
        """0 when every bucket had a token (each then spent one), else how long until
        the emptiest refills. Buckets are checked in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket, limit in buckets:
                await self._script(keys=[bucket], args=[limit.rate, limit.burst], client=pipe)
            answers = await pipe.execute()
        waits = [float(wait) for allowed, wait in answers if not int(allowed)]
        return max(waits, default=0.0)


def key_bucket(api_key: str) -> str:
    """Per API key, named by a digest: keys never appear in Redis."""
    return keys.RATE_BUCKET_TEMPLATE % ("k:" + hashlib.sha256(api_key.encode()).hexdigest()[:16])


def ip_bucket(address: str) -> str:
    return keys.RATE_BUCKET_TEMPLATE % ("ip:" + address)

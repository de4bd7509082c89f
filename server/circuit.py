"""A circuit breaker for Redis reads that have a fallback.

When Redis stops answering, the first failure opens the circuit for a moment: calls in
that window fail at once instead of each waiting on a dead connection, so fallbacks
(recommendations from the model in memory) keep their normal latency. After the pause,
the next call tries Redis again and closes the circuit if it answers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis is down or the circuit is open: use the fallback."""


class CircuitBreaker:
    def __init__(self, pause_seconds: float = 1.0) -> None:
        self._pause = pause_seconds
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    async def guard(self, call: Awaitable[T]) -> T:
        if self.is_open:
            if hasattr(call, "close"):
                call.close()  # never awaited: close it so Python does not warn
            raise RedisUnavailable
        try:
            return await call
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self._open_until = time.monotonic() + self._pause
            raise RedisUnavailable from exc

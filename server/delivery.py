"""Delivering outbox messages to the store's webhook: signed, retried, dead-lettered.

The deliverer reads the outbox through its own consumer group. A message that fails
(a network error or a non-2xx answer) waits in a retry set with exponential backoff and
carries its attempt count; after the last attempt it goes to the dead-letter stream with
the last error. The clock is a parameter, so tests drive it.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from campaigns.delivery import (
    SIGNATURE_HEADER,
    parse_retry_entry,
    retry_delay,
    retry_entry,
    sign,
)
from state import keys
from state.groups import ensure_group, take_batch

log = logging.getLogger(__name__)
LEASE = 30.0  # seconds a deliverer holds a retry while calling the webhook
_LEASE = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if due and tonumber(due) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""


class WebhookDeliverer:
    def __init__(
        self,
        redis: Redis,
        url: str,
        secret: str,
        max_attempts: int,
        backoff_seconds: float,
        consumer: str,
    ) -> None:
        self._redis = redis
        self._url = url
        self._secret = secret
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._consumer = consumer
        self._http = httpx.AsyncClient(timeout=5.0)
        self._lease = redis.register_script(_LEASE)

    async def close(self) -> None:
        await self._http.aclose()

    async def ensure_group(self) -> None:
        await ensure_group(self._redis, keys.OUTBOX_STREAM, keys.DELIVERY_GROUP, "0")

    async def deliver(self, now: float, count: int = 100, claim_idle_ms: int = 60_000) -> int:
        """Try new outbox messages (and those a dead deliverer held) and the retries now
        due; return how many got through."""
        delivered = 0
        entries = await take_batch(
            self._redis,
            keys.OUTBOX_STREAM,
            keys.DELIVERY_GROUP,
            self._consumer,
            count,
            claim_idle_ms,
        )
        for entry_id, fields in entries:
            if fields:
                delivered += await self._attempt(dict(fields), 1, now)
            await self._redis.xack(keys.OUTBOX_STREAM, keys.DELIVERY_GROUP, entry_id)
        due: Any = await self._redis.zrangebyscore(
            keys.DELIVERY_RETRY, "-inf", now, start=0, num=count
        )
        for member in due:
            # Lease the retry (push its time past the call) rather than removing it, so a
            # crash mid-call leaves it to be tried again, and no other deliverer takes it.
            if await self._lease(keys=[keys.DELIVERY_RETRY], args=[member, now, now + LEASE]):
                message, attempt = parse_retry_entry(member)
                delivered += await self._attempt(message, attempt, now)
                await self._redis.zrem(keys.DELIVERY_RETRY, member)
        return delivered

    async def _attempt(self, message: dict[str, str], attempt: int, now: float) -> int:
        body = orjson.dumps(message)
        signature = sign(self._secret, int(now), body)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            return 1
        if attempt >= self._max_attempts:
            log.warning("message %s dead-lettered: %s", message.get("message_id"), error)
            dead: dict[Any, Any] = {**message, "attempts": str(attempt), "error": error}
            await self._redis.xadd(keys.DELIVERY_DEAD, dead)
            return 0
        retry = retry_entry(message, attempt + 1)
        await self._redis.zadd(
            keys.DELIVERY_RETRY, {retry: now + retry_delay(attempt, self._backoff)}
        )
        return 0

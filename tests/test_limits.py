"""Rate limits: a 429 with Retry-After once a bucket is empty, and recovery after it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

from fastapi.testclient import TestClient

from server.app import create_app
from settings import Settings
from state.connection import connect
from state.ratelimit import Limit, RateLimiter
from tests.conftest import PUBLIC, SECRET


def limited_client(settings: Settings, **limits: float) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update=limits))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_one_address_is_stopped_and_recovers_after_retry_after(settings: Settings) -> None:
    for client in limited_client(settings, rate_limit_ip_per_second=2, rate_limit_ip_burst=3):
        answers = [client.get("/v1/trending", headers=PUBLIC) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.json()["error"]["code"] == "rate_limited"
        wait = int(refused.headers["Retry-After"])
        assert wait >= 1
        # Refused requests spend nothing: after Retry-After the client is served again.
        time.sleep(wait)
        assert client.get("/v1/trending", headers=PUBLIC).status_code == 200


def test_each_key_has_its_own_bucket(settings: Settings) -> None:
    for client in limited_client(
        settings, rate_limit_key_per_second=0.5, rate_limit_key_burst=2, rate_limit_ip_per_second=0
    ):
        statuses = [client.get("/v1/trending", headers=PUBLIC).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert client.get("/v1/trending", headers=SECRET).status_code == 200
        # Unauthenticated requests never reach a bucket, so they cannot drain one.
        assert client.get("/v1/trending").status_code == 401
        assert client.get("/healthz").status_code == 200


def test_concurrent_requests_share_one_lease_and_get_exactly_the_burst(valkey: str) -> None:
    """Leases are refilled one at a time: a hundred requests arriving together on an
    empty lease must not each take one and drain the bucket for the others."""

    async def burst() -> tuple[list[float], float]:
        redis = connect(valkey)
        try:
            limiter = RateLimiter(redis)
            limit = Limit(rate=0.01, burst=100)  # a lease of 5
            bucket = f"test:burst:{uuid.uuid4().hex}"
            waits = await asyncio.gather(
                *(limiter.wait_seconds([(bucket, limit)]) for _ in range(100))
            )
            return list(waits), await limiter.wait_seconds([(bucket, limit)])
        finally:
            await redis.aclose()

    served, refused = asyncio.run(burst())
    assert served == [0.0] * 100
    assert refused > 0

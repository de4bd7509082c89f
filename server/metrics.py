"""Prometheus metrics: per-route latency and status, ingest counts, model and worker state.

Request metrics are counted in-process by `server.observe` (one label set per route
template, never per raw path, so ids cannot explode the series). Model age, Redis
reachability and the worker's lag and pending counts are read when Prometheus scrapes.
With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR so that a scrape sums them.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from redis.asyncio import Redis

from server.engine import Engine
from state import keys

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "encore_requests_total", "HTTP requests by route and status",
    ["method", "route", "status"], registry=REGISTRY,
)  # fmt: skip
LATENCY = Histogram(
    "encore_request_seconds", "Time to answer, by route",
    ["method", "route"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)  # fmt: skip
EVENTS = Counter(
    "encore_events_total", "Events received by POST /v1/events", ["outcome"], registry=REGISTRY
)


async def exposition(redis: Redis, engine: Engine) -> tuple[bytes, str]:
    """The text format, with the gauges read now."""
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    gauges = CollectorRegistry()
    _model_gauges(gauges, engine)
    await _state_gauges(gauges, redis)
    return generate_latest(registry) + generate_latest(gauges), CONTENT_TYPE_LATEST


def _model_gauges(registry: CollectorRegistry, engine: Engine) -> None:
    recommender = engine.recommender
    info = Gauge("encore_model_info", "The bundle being served", ["version", "model"],
                 registry=registry)  # fmt: skip
    age = Gauge("encore_model_age_seconds", "Since the served bundle was trained",
                registry=registry)  # fmt: skip
    if recommender is None:
        return
    manifest = recommender.bundle.manifest
    info.labels(recommender.bundle.version, str(manifest.get("model", ""))).set(1)
    created = manifest.get("created_at")
    if isinstance(created, str):
        age.set(time.time() - datetime.fromisoformat(created).timestamp())


async def _state_gauges(registry: CollectorRegistry, redis: Redis) -> None:
    up = Gauge("encore_redis_up", "1 when Redis answered this scrape", registry=registry)
    lag = Gauge("encore_worker_lag_events", "Events the journey worker has not read yet",
                registry=registry)  # fmt: skip
    pending = Gauge("encore_worker_pending", "Read but not acknowledged, by consumer group",
                    ["group"], registry=registry)  # fmt: skip
    due = Gauge("encore_journey_steps_due", "Journey steps whose time has come",
                registry=registry)  # fmt: skip
    retries = Gauge("encore_webhook_retries_waiting", "Webhook deliveries waiting to retry",
                    registry=registry)  # fmt: skip
    try:
        groups: list[dict[str, Any]] = []
        for stream in (keys.EVENTS_STREAM, keys.OUTBOX_STREAM):
            if await redis.exists(stream):
                groups += await redis.xinfo_groups(stream)
        due.set(await redis.zcount(keys.JOURNEY_DUE, "-inf", time.time()))
        retries.set(await redis.zcard(keys.DELIVERY_RETRY))
    except Exception:
        up.set(0)
        return
    up.set(1)
    for group in groups:
        pending.labels(str(group["name"])).set(int(group.get("pending") or 0))
        if group["name"] == keys.JOURNEY_GROUP and group.get("lag") is not None:
            lag.set(int(group["lag"]))

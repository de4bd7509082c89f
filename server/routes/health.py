"""Liveness and readiness for load balancers and orchestrators; metrics for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from server.metrics import exposition
from server.responses import JSONResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Redis reachable and a model loaded")
async def readyz(request: Request) -> Response:
    try:
        redis_ok = bool(await request.app.state.redis.ping())
    except Exception:
        redis_ok = False
    version = request.app.state.engine.model_version
    ready = redis_ok and version is not None
    body = {
        "status": "ready" if ready else "not_ready",
        "redis": redis_ok,
        "model_version": version,
    }
    return JSONResponse(body, 200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text)")
async def metrics(request: Request) -> Response:
    """Per-route latency histograms and status counts, events received, the model's
    version and age, Redis reachability, the worker's lag and pending counts."""
    body, media_type = await exposition(request.app.state.redis, request.app.state.engine)
    return Response(body, media_type=media_type)

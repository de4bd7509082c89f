"""The FastAPI application: wiring settings, Redis, the model engine and the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from models.events import Event
from server import heap
from server.auth import ApiKeys, KeyFileWatcher
from server.campaign_store import CampaignStore
from server.circuit import CircuitBreaker
from server.engine import Engine
from server.errors import install_error_handlers
from server.hot_route import PATH as HOT_PATH
from server.hot_route import RecommendationsHotPath
from server.limits import BodySizeLimit
from server.observe import ObserveRequests
from server.people import PeopleService
from server.periodic import Periodic
from server.recommending import RecommendationService
from server.responses import JSONResponse
from server.routes import campaigns as campaign_routes
from server.routes import (
    dashboard,
    email,
    events,
    health,
    items,
    recommendations,
    storefront,
    visitors,
)
from server.schemas import ERROR_RESPONSES, ErrorBody, EventsBatch
from settings import DEVELOPMENT_SECRET, Settings, get_settings
from state.connection import open_client
from state.ingest import EventStore
from state.multiplex import Lanes
from state.outcomes import OutcomeRecorder
from state.ratelimit import RateLimiter

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    api_keys = ApiKeys.from_settings(settings)
    if settings.offer_code_secret == DEVELOPMENT_SECRET:
        log.warning("OFFER_CODE_SECRET is the development default: set it in production")
    if not api_keys.public and not api_keys.secret:
        raise RuntimeError("no API keys configured: set PUBLIC_API_KEYS and SECRET_API_KEYS")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is unset: start through `python -m server`")
        campaigns = CampaignStore(settings.campaigns_file, settings.campaigns_poll_seconds)
        campaigns.load_initial()
        app.state.campaigns = campaigns
        redis = await open_client(settings.redis_url, settings.redis_max_connections)
        engine = Engine.from_settings(redis, settings)
        await engine.start()
        app.state.redis = redis
        app.state.engine = engine
        app.state.event_store = EventStore(redis, settings)
        app.state.outcomes = OutcomeRecorder(redis)
        app.state.rate_limiter = RateLimiter(redis)
        app.state.rate_breaker = CircuitBreaker()
        lanes = Lanes.beside(redis)
        app.state.recommendations = RecommendationService(redis, engine, campaigns, lanes)
        app.state.people = PeopleService(
            redis, engine, campaigns, settings.offer_code_secret, lanes
        )
        campaigns.start()
        key_watcher = Periodic(
            "API keys reload",
            settings.campaigns_poll_seconds,
            KeyFileWatcher(settings, lambda keys: setattr(app.state, "api_keys", keys)).check,
        )
        key_watcher.start()
        collector = heap.tune_for_serving()
        try:
            yield
        finally:
            heap.release(collector)
            await key_watcher.stop()
            await campaigns.stop()
            await engine.stop()
            if lanes is not None:
                await lanes.aclose()
            await redis.aclose()

    app = FastAPI(
        title="Encore",
        version="1",
        summary="Real-time personalization for online-store retention",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    app.state.api_keys = api_keys
    for router in (
        events.router,
        items.router,
        recommendations.router,
        visitors.router,
        campaign_routes.router,
        email.router,
        dashboard.router,
        storefront.router,
        health.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    install_error_handlers(app)
    hot = next(r for r in recommendations.router.routes if getattr(r, "path", None) == HOT_PATH)
    app.add_middleware(RecommendationsHotPath, route=hot)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveRequests)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, plus the schemas it refers to by name: the events the
    events route validates by hand, and the error body every route may answer."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (Event, EventsBatch, ErrorBody):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    app.openapi_schema = document
    return document

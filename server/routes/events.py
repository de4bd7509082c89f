"""POST /v1/events: one event or a batch, validated whole, stored atomically."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from starlette.background import BackgroundTask
from starlette.responses import Response

from campaigns.attribution import Vocabulary
from campaigns.config import Campaigns
from models.events import Event
from server.auth import PublicKey, Role, check_customer_token
from server.errors import ApiError, describe_validation_errors
from server.metrics import EVENTS
from server.responses import JSONResponse
from server.schemas import EventsAccepted, EventsBatch
from state.outcomes import accepted_events

router = APIRouter(tags=["events"])
_EVENT_LIST = TypeAdapter(list[Event])
log = logging.getLogger(__name__)

_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {"$ref": "#/components/schemas/EventsBatch"},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/v1/events",
    status_code=202,
    response_model=EventsAccepted,
    openapi_extra=_BODY_SCHEMA,
    summary="Record behaviour events",
)
async def post_events(request: Request, role: PublicKey) -> Response:
    """Validates every event before storing any: one bad event rejects the request.

    A browser (public key) may name a customer only with that customer's token, or
    anyone could read another customer's recommendations and offers by claiming them.
    """
    settings = request.app.state.settings
    raw = _event_list(await request.body(), settings.max_events_per_request)
    events = _validate_all(raw)
    if role is Role.PUBLIC:
        for index, event in enumerate(events):
            check_customer_token(index, event, settings.customer_token_secret)
    now = datetime.now(UTC)
    result = await request.app.state.event_store.ingest(events, now)
    campaigns = request.app.state.campaigns.current
    try:
        await request.app.state.outcomes.record(
            accepted_events(events, result, now.timestamp()),
            campaigns.attribution,
            campaigns.experiments,
            vocabulary(campaigns, request.app.state.engine.served_versions),
        )
    except Exception:  # the events are stored: a retry would be a duplicate, so say 202
        log.exception("attribution not recorded for %d events", result.accepted)
    # Segments are live: everyone this request touched is re-evaluated right after the
    # answer goes out (about half a millisecond a person), so a big batch is not held up.
    refresh = BackgroundTask(
        request.app.state.people.refresh_segments, {event.visitor_id for event in events}
    )
    EVENTS.labels("accepted").inc(result.accepted)
    EVENTS.labels("duplicate").inc(result.duplicates)
    body = {"accepted": result.accepted, "duplicates": result.duplicates}
    return JSONResponse(body, 202, background=refresh)


def _event_list(body: bytes, limit: int) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc.msg}") from None
    if isinstance(payload, dict) and "events" in payload:
        if set(payload) != {"events"} or not isinstance(payload["events"], list):
            raise ApiError(422, "invalid_request", 'a batch is {"events": [...]} and nothing else')
        events: list[Any] = payload["events"]
    elif isinstance(payload, dict):
        events = [payload]
    else:
        raise ApiError(422, "invalid_request", 'send one event object or {"events": [...]}')
    if not events:
        raise ApiError(422, "invalid_request", "the batch holds no events")
    if len(events) > limit:
        raise ApiError(
            413, "too_many_events", f"a batch holds at most {limit} events, got {len(events)}"
        )
    return events


def _validate_all(rows: list[Any]) -> list[Event]:
    """Every event, validated in one pass; on a failure, the first bad event's error.

    One call into pydantic-core for the list costs less than one a row, and a
    rejected request can afford to find its bad event again row by row."""
    try:
        return _EVENT_LIST.validate_python(rows)
    except ValidationError:
        return [_validate(index, row) for index, row in enumerate(rows)]


def _validate(index: int, row: Any) -> Event:
    try:
        return Event.model_validate(row)
    except ValidationError as exc:
        details = describe_validation_errors(list(exc.errors()))
        first = details[0]
        raise ApiError(
            422,
            "invalid_event",
            f"event {index}: {first['field'] or 'event'}: {first['message']}",
            index=index,
            details=details,
        ) from None


__all__ = ["EventsBatch", "router"]


def vocabulary(campaigns: Campaigns, models: frozenset[str]) -> Vocabulary:
    """What attribution may count: the configured variants and offers, served models."""
    variants = frozenset(f"{e.name}/{v.name}" for e in campaigns.experiments for v in e.variants)
    return Vocabulary(models, variants, frozenset(o.id for o in campaigns.offers))

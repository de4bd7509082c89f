"""GET /v1/recommendations without the framework's per-request machinery.

It is the request a storefront makes on every page view, and profiling under load put
FastAPI's routing, dependency solving and query-model parsing at about a fifth of its
cost (docs/performance.md). This layer answers a well-formed request itself, with the
very parts the route uses (`authorize`, `RecommendationQuery`, the recommendation
service), and hands anything else to the route: a query the model refuses gets the
route's own 422. The route stays, as the fallback and as the OpenAPI description.
"""

from __future__ import annotations

import logging
from typing import Any, get_origin
from urllib.parse import parse_qsl

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import KEY_HEADER, KEY_PARAMETER, authorize
from server.errors import ApiError, api_error_response, store_unavailable_response
from server.responses import JSONResponse
from server.schemas import RecommendationQuery

log = logging.getLogger(__name__)
PATH = "/v1/recommendations"
HEADER_NAME = KEY_HEADER.lower().encode("latin-1")  # as ASGI spells header names
LIST_FIELDS = frozenset(
    name
    for name, field in RecommendationQuery.model_fields.items()
    if get_origin(field.annotation) is list
)


class RecommendationsHotPath:
    """ASGI middleware in front of the router for one path and method."""

    def __init__(self, app: ASGIApp, route: BaseRoute | None = None) -> None:
        self.app = app
        self.route = route  # named in scope, so the metrics label the request by it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        parameters = query_parameters(scope["query_string"])
        try:
            query = RecommendationQuery.model_validate(parameters)
        except ValidationError:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        response = await self._answer(scope, query, parameters.get(KEY_PARAMETER))
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, query: RecommendationQuery, key_in_url: Any) -> Response:
        state = scope["app"].state
        client = scope["client"][0] if scope.get("client") else None
        try:
            await authorize(state, client, header(scope, HEADER_NAME), key_in_url)
            return JSONResponse(await state.recommendations.answer(query))
        except ApiError as exc:
            return api_error_response(exc)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("redis unavailable on GET %s: %s", PATH, exc)
            return store_unavailable_response()


def query_parameters(query_string: bytes) -> dict[str, Any]:
    """The query string as the framework reads it: the last value of a repeated
    parameter, every value of a list field."""
    parameters: dict[str, Any] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in LIST_FIELDS:
            parameters.setdefault(name, []).append(value)
        else:
            parameters[name] = value
    return parameters


def route_path(scope: Scope) -> str:
    """The path below the app's mount point (`--root-path`), as the router matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None

"""JSON responses rendered by orjson: the fastest encoder, and numpy-aware."""

from __future__ import annotations

from typing import Any

import orjson
from starlette import responses
from starlette.background import BackgroundTask


class JSONResponse(responses.JSONResponse):
    """A JSONResponse (so that OpenAPI documents the response models) rendered by orjson."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, background=background)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)

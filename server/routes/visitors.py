"""The live profile of a visitor (secret key only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from models.events import MAX_ID_LENGTH
from server.auth import SecretKey
from server.errors import ApiError
from server.responses import JSONResponse
from state.visitors import read_profile

router = APIRouter(tags=["visitors"])


@router.get("/v1/visitors/{visitor_id}", summary="A visitor's live profile")
async def get_visitor(
    request: Request,
    visitor_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    _: SecretKey,
) -> Response:
    profile = await read_profile(request.app.state.redis, visitor_id)
    if profile is None:
        raise ApiError(404, "visitor_not_found", "no events recorded for this visitor")
    return JSONResponse(profile)

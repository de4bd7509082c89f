"""API keys: a public key for storefront JavaScript, a secret key for everything.

Missing or unknown key: 401. A public key on a secret route: 403.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery

from server.errors import ApiError
from settings import Settings

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Public or secret key"
)
# sendBeacon cannot set headers, so the widget's events carry the public key in the URL.
api_key_query = APIKeyQuery(
    name="api_key", auto_error=False, description="A public key only (URLs end up in logs)"
)


class Role(StrEnum):
    PUBLIC = "public"
    SECRET = "secret"


@dataclass(frozen=True)
class ApiKeys:
    public: tuple[str, ...]
    secret: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        public, secret = list(settings.public_api_keys), list(settings.secret_api_keys)
        if settings.api_keys_file is not None:
            stored = json.loads(settings.api_keys_file.read_text())
            public += stored.get("public", [])
            secret += stored.get("secret", [])
        return cls(tuple(public), tuple(secret))

    def role_of(self, presented: str) -> Role | None:
        """Compare in constant time against every key so timing reveals nothing."""
        candidate = presented.encode()
        is_secret = any(hmac.compare_digest(candidate, key.encode()) for key in self.secret)
        is_public = any(hmac.compare_digest(candidate, key.encode()) for key in self.public)
        if is_secret:
            return Role.SECRET
        return Role.PUBLIC if is_public else None


async def caller_role(
    request: Request,
    key: Annotated[str | None, Security(api_key_header)],
    key_in_url: Annotated[str | None, Security(api_key_query)],
) -> Role:
    """Async on purpose: a sync dependency would cost a thread-pool hop per request."""
    if not key and key_in_url:
        if request.app.state.api_keys.role_of(key_in_url) is not Role.PUBLIC:
            raise ApiError(401, "unauthorized", "only a public key may be sent as api_key")
        return Role.PUBLIC
    if not key:
        raise ApiError(401, "unauthorized", "missing X-API-Key header")
    role = request.app.state.api_keys.role_of(key)
    if role is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    return role


async def secret_role(role: Annotated[Role, Depends(caller_role)]) -> Role:
    if role is not Role.SECRET:
        raise ApiError(403, "forbidden", "this route needs a secret API key")
    return role


PublicKey = Annotated[Role, Depends(caller_role)]
SecretKey = Annotated[Role, Depends(secret_role)]

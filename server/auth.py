"""Who is calling: API keys, rate limits, signed requests and customer tokens.

A public key is for storefront JavaScript, a secret key for everything. Missing or
unknown key: 401. A public key on a secret route: 403. A browser that names a customer
must prove it with the customer's token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery
from redis.exceptions import RedisError
from starlette.datastructures import State

from campaigns.delivery import SIGNATURE_HEADER, request_message, verify
from models.events import Event
from server.circuit import RedisUnavailable
from server.errors import ApiError
from settings import Settings
from state.ratelimit import Limit, ip_bucket, key_bucket

log = logging.getLogger(__name__)

KEY_HEADER = "X-API-Key"
KEY_PARAMETER = "api_key"
api_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False, description="Public or secret key")
# sendBeacon cannot set headers, so the widget's events carry the public key in the URL.
api_key_query = APIKeyQuery(
    name=KEY_PARAMETER, auto_error=False, description="A public key only (URLs end up in logs)"
)


class Role(StrEnum):
    PUBLIC = "public"
    SECRET = "secret"


HASHED_PREFIX = "sha256:"


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _digest_of(entry: str) -> bytes:
    """A key file may list keys as `sha256:<hex>` so that it never holds a usable key."""
    if entry.startswith(HASHED_PREFIX):
        return bytes.fromhex(entry[len(HASHED_PREFIX) :])
    return key_digest(entry)


@dataclass(frozen=True)
class ApiKeys:
    """Only digests are kept in memory: a heap dump or a log of this object leaks no key.
    Several keys of each kind may be valid at once, so keys rotate without downtime: add
    the new key, move callers over, remove the old one (API_KEYS_FILE is re-read live)."""

    public: tuple[bytes, ...]
    secret: tuple[bytes, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        public, secret = list(settings.public_api_keys), list(settings.secret_api_keys)
        if settings.api_keys_file is not None:
            stored = json.loads(settings.api_keys_file.read_text())
            public += _key_list(stored, "public")
            secret += _key_list(stored, "secret")
        return cls(tuple(map(_digest_of, public)), tuple(map(_digest_of, secret)))

    def role_of(self, presented: str) -> Role | None:
        """Compare in constant time against every key so timing reveals nothing."""
        candidate = key_digest(presented)
        is_secret = any(hmac.compare_digest(candidate, key) for key in self.secret)
        is_public = any(hmac.compare_digest(candidate, key) for key in self.public)
        if is_secret:
            return Role.SECRET
        return Role.PUBLIC if is_public else None


class KeyFileWatcher:
    """Re-reads API_KEYS_FILE when it changes; a broken file keeps the keys in force."""

    def __init__(self, settings: Settings, on_change: Callable[[ApiKeys], None]) -> None:
        self._settings = settings
        self._on_change = on_change
        self._mtime = _mtime(settings.api_keys_file)

    async def check(self) -> None:
        mtime = _mtime(self._settings.api_keys_file)
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            keys = ApiKeys.from_settings(self._settings)
        except (OSError, ValueError) as exc:
            log.error("API keys file refused, keeping the keys in force: %s", exc)
            return
        self._on_change(keys)
        log.info("API keys reloaded: %d public, %d secret", len(keys.public), len(keys.secret))


def _key_list(stored: object, kind: str) -> list[str]:
    """The file's list of `kind` keys; anything else is refused whole (a bare string
    would otherwise make a key of each of its characters)."""
    if not isinstance(stored, dict):
        raise ValueError('the API keys file holds {"public": [...], "secret": [...]}')
    keys = stored.get(kind, [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and len(k) >= 16 for k in keys):
        raise ValueError(f"{kind!r} must be a list of keys of 16 characters or more")
    return keys


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime if path is not None else None
    except OSError:
        return None


async def caller_role(
    request: Request,
    key: Annotated[str | None, Security(api_key_header)],
    key_in_url: Annotated[str | None, Security(api_key_query)],
) -> Role:
    """Async on purpose: a sync dependency would cost a thread-pool hop per request."""
    client = request.client.host if request.client is not None else None
    return await authorize(request.app.state, client, key, key_in_url)


async def authorize(
    state: State, client: str | None, key: str | None, key_in_url: str | None
) -> Role:
    """The caller's role, after its rate limits; 401 or 429 otherwise. Takes plain
    values rather than a request so that the hot recommendations path can call it."""
    if not key and key_in_url:
        if state.api_keys.role_of(key_in_url) is not Role.PUBLIC:
            raise ApiError(401, "unauthorized", "only a public key may be sent as api_key")
        await _within_limits(state, client, key_in_url)
        return Role.PUBLIC
    if not key:
        raise ApiError(401, "unauthorized", "missing X-API-Key header")
    role = state.api_keys.role_of(key)
    if role is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    await _within_limits(state, client, key)
    return role


async def _within_limits(state: State, client: str | None, key: str) -> None:
    """429 with Retry-After once the key's or the client address's bucket is empty.
    With Redis unreachable the limits are skipped: reads keep answering from memory."""
    settings = state.settings
    buckets = []
    if settings.rate_limit_key_per_second > 0:
        limit = Limit(settings.rate_limit_key_per_second, settings.rate_limit_key_burst)
        buckets.append((key_bucket(key), limit))
    if settings.rate_limit_ip_per_second > 0 and client is not None:
        limit = Limit(settings.rate_limit_ip_per_second, settings.rate_limit_ip_burst)
        buckets.append((ip_bucket(client), limit))
    if not buckets:
        return
    try:
        wait = await state.rate_breaker.guard(state.rate_limiter.wait_seconds(buckets))
    except (RedisUnavailable, RedisError) as exc:  # e.g. READONLY during a failover
        log.warning("rate limits skipped: %s", type(exc).__name__)
        return
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests; retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


async def secret_role(request: Request, role: Annotated[Role, Depends(caller_role)]) -> Role:
    if role is not Role.SECRET:
        raise ApiError(403, "forbidden", "this route needs a secret API key")
    settings = request.app.state.settings
    if settings.request_signing_secret:
        await _check_signature(request, settings.request_signing_secret,
                               settings.request_signature_tolerance_seconds)  # fmt: skip
    return role


async def _check_signature(request: Request, secret: str, tolerance: int) -> None:
    header = request.headers.get(SIGNATURE_HEADER)
    if header is None:
        raise ApiError(
            401, "unauthorized", f"this server wants a signed request ({SIGNATURE_HEADER})"
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    message = request_message(request.method, target, await request.body())
    if not verify(secret, header, message, int(time.time()), tolerance):
        raise ApiError(401, "unauthorized", "the request signature is wrong or too old")


PublicKey = Annotated[Role, Depends(caller_role)]
SecretKey = Annotated[Role, Depends(secret_role)]


def customer_token(secret: str, customer_id: str) -> str:
    """What the store's server hands the page at sign-in for the widget to send."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def check_customer_token(index: int, event: Event, secret: str | None) -> None:
    """A browser (public key) may name a customer only with that customer's token."""
    if event.customer_id is None:
        return
    given = (event.customer_token or "").encode()
    if secret is None or not hmac.compare_digest(
        customer_token(secret, event.customer_id).encode(), given
    ):
        raise ApiError(
            403,
            "customer_not_proven",
            f"event {index}: customer_id from a public key needs a valid customer_token "
            "(made by the store's server with CUSTOMER_TOKEN_SECRET)",
            index=index,
        )

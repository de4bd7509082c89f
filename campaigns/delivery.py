"""Signatures and retries: how a webhook message or an API request is signed, and when
a failed delivery is retried.

`X-Encore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<message>">` with a
shared secret; the receiver refuses old timestamps. A webhook's message is its body; a
signed API request's is "<METHOD> <path?query>\n<body>".
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

SIGNATURE_HEADER = "X-Encore-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """True when the header signs this body with this secret, recently enough."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body)
    fresh = abs(now - timestamp) <= tolerance
    # Bytes: a header may hold any character, and compare_digest refuses non-ASCII str.
    return fresh and hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))


def request_message(method: str, path_and_query: str, body: bytes) -> bytes:
    """What a signed API request signs: its method, its path with the query, its body."""
    return f"{method.upper()} {path_and_query}\n".encode() + body


def retry_delay(attempt: int, base_seconds: float) -> float:
    """Exponential backoff: base, 2x base, 4x base... after the 1st, 2nd, 3rd failure."""
    return base_seconds * 2 ** (attempt - 1)


def retry_entry(message: dict[str, str], attempt: int) -> bytes:
    """How a message waiting for its next attempt is held (a member of the retry set)."""
    return orjson.dumps({"message": message, "attempt": attempt})


def parse_retry_entry(entry: str | bytes) -> tuple[dict[str, str], int]:
    """The message and the attempt it is waiting for."""
    waiting = orjson.loads(entry)
    return waiting["message"], int(waiting["attempt"])

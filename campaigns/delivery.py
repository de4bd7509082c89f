"""Webhook delivery rules: how a message is signed, and when a failed one is retried.

Receivers verify `X-Encore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>">` with the shared secret, and should refuse old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac

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
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, header)


def retry_delay(attempt: int, base_seconds: float) -> float:
    """Exponential backoff: base, 2x base, 4x base... after the 1st, 2nd, 3rd failure."""
    return base_seconds * 2 ** (attempt - 1)

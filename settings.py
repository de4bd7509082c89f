"""The one settings object for the server, the worker and the offline jobs.

Every knob is read from the environment (or a `.env` file) so that the same code runs
on a laptop with the embedded Valkey and in production against a Redis server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]
DEVELOPMENT_SECRET = "encore-development-only"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="redis:// URL, or redis+cluster://host:port naming any node of a "
        "Redis Cluster; unset starts the embedded Valkey.",
    )
    data_dir: Path = Path("var/data")
    models_dir: Path = Path("var/models")
    embedded_redis_port: int = 6390
    redis_max_connections: int = 64

    public_api_keys: CommaList = []
    secret_api_keys: CommaList = []
    api_keys_file: Path | None = None
    cors_origins: CommaList = []
    campaigns_file: Path | None = None
    campaigns_poll_seconds: float = 2.0
    # Journey messages may also be POSTed to the store's messaging service, signed.
    webhook_url: str | None = None
    webhook_secret: str = DEVELOPMENT_SECRET
    webhook_max_attempts: int = 5
    webhook_backoff_seconds: float = 2.0

    # When set, routes that need the secret key also need a fresh request signature
    # (X-Encore-Signature, see campaigns/delivery.py): a leaked key alone is not enough.
    request_signing_secret: str | None = None
    request_signature_tolerance_seconds: int = 300

    # Offer codes are an HMAC of person and offer: set a private value in production.
    offer_code_secret: str = DEVELOPMENT_SECRET
    # Browsers may link a visitor to a customer only with a customer_token made with
    # this secret by the store's server (unset: only secret-key callers may link).
    customer_token_secret: str | None = None
    # Keys the digests of erased ids, which training exports check: keep it private.
    privacy_secret: str = DEVELOPMENT_SECRET

    # Behaviour state kept per visitor; caps keep memory per visitor bounded.
    stream_max_len: int = 1_000_000
    recent_interactions_cap: int = 100
    dedup_ttl_seconds: int = 7 * 24 * 3600

    # Rate limits (token buckets in Redis; requests a second and burst; 0 turns one off).
    # The public key is shared by every shopper, so its bucket is wide; the per-address
    # bucket is what stops one client. Behind a proxy, set FORWARDED_ALLOW_IPS so the
    # client address comes from X-Forwarded-For.
    rate_limit_key_per_second: float = 5000.0
    rate_limit_key_burst: float = 10000.0
    rate_limit_ip_per_second: float = 100.0
    rate_limit_ip_burst: float = 200.0

    # Request limits: a hostile or broken client must not exhaust the server.
    max_body_bytes: int = 1_000_000
    max_events_per_request: int = 1000
    max_items_per_request: int = 1000

    # Serving.
    model_poll_seconds: float = 2.0
    exclude_purchased: bool = True
    replenishable_categories: CommaList = []  # bought again and again: not excluded once bought
    workers: int = 1
    # Seconds a stopping server gives in-flight requests before closing them.
    shutdown_grace_seconds: int = 20
    log_format: Literal["json", "text"] = "json"
    # Serve /demo, a sample shop page carrying the widget (make demo turns it on).
    storefront_demo: bool = False

    @field_validator(
        "public_api_keys",
        "secret_api_keys",
        "cors_origins",
        "replenishable_categories",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("redis_url", "campaigns_file", "api_keys_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`CAMPAIGNS_FILE=` in a shell or compose file means "none", not the folder "."."""
        return None if value == "" else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

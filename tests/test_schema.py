"""Schemathesis against /openapi.json, with both keys: no 5xx, no response that breaks
its documented schema or content type, whatever the generated input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from server.app import create_app
from server.inprocess import serving
from settings import Settings
from tests.conftest import PUBLIC_KEY, SECRET_KEY

CAMPAIGNS = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"
CHECKS = (not_a_server_error, response_schema_conformance, content_type_conformance)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def app_settings(redis_url: str | None = None, models_dir: Path | None = None) -> Settings:
    return Settings(
        redis_url=redis_url, models_dir=models_dir or Path("var/models"),
        public_api_keys=[PUBLIC_KEY], secret_api_keys=[SECRET_KEY], campaigns_file=CAMPAIGNS,
        rate_limit_key_per_second=0, rate_limit_ip_per_second=0,
    )  # fmt: skip


# The document is the app's own, read without starting it; the calls go to a live one.
schema = schemathesis.openapi.from_dict(create_app(app_settings()).openapi())


@pytest.fixture(scope="module")
def base_url(valkey: str, trained_models: Path) -> Iterator[str]:
    with serving(create_app(app_settings(f"{valkey}/7", trained_models))) as base:
        yield base


@schema.parametrize()
@EXAMPLES
def test_the_api_keeps_its_schema_with_the_public_key(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers={"X-API-Key": PUBLIC_KEY}, checks=CHECKS)


@schema.parametrize()
@EXAMPLES
def test_the_api_keeps_its_schema_with_the_secret_key(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers={"X-API-Key": SECRET_KEY}, checks=CHECKS)

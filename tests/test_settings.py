"""Settings read from the environment the way shells and compose files write them."""

from __future__ import annotations

import pytest

from settings import Settings


def test_empty_and_comma_separated_values_mean_what_an_operator_meant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAMPAIGNS_FILE", "")
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("PUBLIC_API_KEYS", "pk_one, pk_two,")
    settings = Settings()
    assert settings.campaigns_file is None and settings.redis_url is None
    assert settings.public_api_keys == ["pk_one", "pk_two"]

"""The public/secret key split on every route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PUBLIC, SECRET

ITEM = {"items": [{"item_id": "auth-probe", "title": "Probe"}]}
Route = tuple[str, str, Any]
PUBLIC_ROUTES: list[Route] = [
    ("GET", "/v1/recommendations?visitor_id=a", None),
    ("GET", "/v1/trending", None),
    ("POST", "/v1/events", {"type": "view", "visitor_id": "a", "item_id": "i000001"}),
]
SECRET_ROUTES: list[Route] = [
    ("PUT", "/v1/items", ITEM),
    ("GET", "/v1/visitors/a", None),
    ("POST", "/v1/recommendations/batch", {"requests": [{"visitor_id": "a"}]}),
]


@pytest.mark.parametrize(("method", "path", "body"), PUBLIC_ROUTES + SECRET_ROUTES)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "nope"}], ids=["missing", "wrong"])
def test_no_valid_key_is_401(
    client: TestClient, method: str, path: str, body: object, headers: dict[str, str]
) -> None:
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body"), SECRET_ROUTES)
def test_a_public_key_on_a_secret_route_is_403(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = client.request(method, path, json=body, headers=PUBLIC)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), PUBLIC_ROUTES)
def test_both_keys_open_public_routes(
    client: TestClient, method: str, path: str, body: object
) -> None:
    for headers in (PUBLIC, SECRET):
        assert client.request(method, path, json=body, headers=headers).status_code < 300


def test_a_secret_key_opens_secret_routes(client: TestClient) -> None:
    assert client.put("/v1/items", json=ITEM, headers=SECRET).status_code == 200

"""The public/secret key split on every route."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from campaigns.delivery import SIGNATURE_HEADER, request_message, sign
from server.app import create_app
from server.auth import ApiKeys, customer_token, secret_role
from settings import Settings
from state import keys
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


def secret_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every route that demands the secret key, read from the app itself."""

    def needs_secret(dependant: Any) -> bool:
        return any(d.call is secret_role or needs_secret(d) for d in dependant.dependencies)

    def api_routes(routes: list[Any]) -> list[APIRoute]:
        """FastAPI keeps included routers whole; their routes are inside (no prefixes here)."""
        flat: list[APIRoute] = []
        for route in routes:
            if isinstance(route, APIRoute):
                flat.append(route)
            elif hasattr(route, "original_router"):
                flat += api_routes(route.original_router.routes)
        return flat

    app: Any = client.app
    found = []
    for route in api_routes(app.routes):
        if needs_secret(route.dependant):
            path = re.sub(r"\{[^}]+\}", "probe", route.path)
            found += [(method, path) for method in sorted(route.methods or ())]
    return found


def test_a_public_key_gets_403_on_every_secret_route(client: TestClient) -> None:
    routes = secret_routes(client)
    assert ("DELETE", "/v1/visitors/probe") in routes and len(routes) >= 10
    for method, path in routes:
        response = client.request(method, path, headers=PUBLIC)
        assert response.status_code == 403, (method, path, response.text)
        assert client.request(method, path).status_code == 401, (method, path)


def test_keys_may_be_stored_hashed_and_rotate_without_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys.json"
    old_key, new_key = "sk_old_" + "x" * 24, "sk_new_" + "y" * 24
    digest = hashlib.sha256(old_key.encode()).hexdigest()
    key_file.write_text(json.dumps({"public": [], "secret": [f"sha256:{digest}"]}))
    rotating = settings.model_copy(
        update={"api_keys_file": key_file, "secret_api_keys": [], "campaigns_poll_seconds": 0.05}
    )
    with TestClient(create_app(rotating), raise_server_exceptions=False) as client:
        assert client.get("/v1/segments", headers={"X-API-Key": old_key}).status_code == 200
        assert client.get("/v1/segments", headers={"X-API-Key": digest}).status_code == 401
        key_file.write_text(json.dumps({"secret": [new_key]}))
        os.utime(key_file, (time.time() + 5, time.time() + 5))  # a new mtime, surely
        deadline = time.monotonic() + 5
        while client.get("/v1/segments", headers={"X-API-Key": new_key}).status_code != 200:
            assert time.monotonic() < deadline, "the new key never took effect"
            time.sleep(0.05)
        assert client.get("/v1/segments", headers={"X-API-Key": old_key}).status_code == 401
        # A broken edit keeps the keys in force.
        key_file.write_text("{not json")
        os.utime(key_file, (time.time() + 10, time.time() + 10))
        assert client.get("/v1/segments", headers={"X-API-Key": new_key}).status_code == 200


def test_signed_requests_when_the_server_asks_for_them(settings: Settings) -> None:
    secret = "signing-secret-for-tests"
    signing = settings.model_copy(update={"request_signing_secret": secret})
    body = json.dumps({"items": [{"item_id": "signed-probe", "title": "Signed"}]}).encode()

    def signed(at: int, payload: bytes = body, path: str = "/v1/items") -> dict[str, str]:
        header = sign(secret, at, request_message("PUT", path, payload))
        return {**SECRET, "Content-Type": "application/json", SIGNATURE_HEADER: header}

    now = int(time.time())
    with TestClient(create_app(signing), raise_server_exceptions=False) as client:
        assert client.put("/v1/items", content=body, headers=signed(now)).status_code == 200
        unsigned = client.put("/v1/items", content=body, headers={**SECRET})
        assert unsigned.status_code == 401
        stale = client.put("/v1/items", content=body, headers=signed(now - 3600))
        assert stale.status_code == 401
        tampered = client.put("/v1/items", content=body.replace(b"Signed", b"Forged"),
                              headers=signed(now))  # fmt: skip
        assert tampered.status_code == 401
        odd: dict[str, Any] = {**SECRET, SIGNATURE_HEADER: "t=1,v1=\u00e9".encode("latin-1")}
        assert client.put("/v1/items", content=body, headers=odd).status_code == 401
        # Public routes are for browsers, which hold no signing secret.
        assert client.get("/v1/trending", headers=PUBLIC).status_code == 200


def test_a_keys_file_must_hold_lists_of_real_keys(settings: Settings, tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    for broken in ({"secret": "sk_live_abcdefghijklmnop"}, {"public": ["short"]}, ["sk"]):
        key_file.write_text(json.dumps(broken))
        with pytest.raises(ValueError):
            ApiKeys.from_settings(settings.model_copy(update={"api_keys_file": key_file}))


def test_a_browser_names_a_customer_only_with_that_customers_token(
    settings: Settings, redis_client: Any
) -> None:
    """Otherwise anyone holding the public key could claim to be any customer and read
    their recommendations and offer codes."""
    secret = "token-secret-for-tests"
    run = uuid.uuid4().hex[:8]
    victim, attacker = f"victim-{run}", f"attacker-{run}"
    claim = {"type": "view", "visitor_id": attacker, "customer_id": victim, "item_id": "i000001"}
    tokens = settings.model_copy(update={"customer_token_secret": secret})
    with TestClient(create_app(tokens), raise_server_exceptions=False) as client:
        for forged in (claim, {**claim, "customer_token": "0" * 64}):
            refused = client.post("/v1/events", json=forged, headers=PUBLIC)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "customer_not_proven"
        assert redis_client.get(keys.link_key(attacker)) is None
        good = {
            **claim,
            "visitor_id": f"real-{run}",
            "customer_token": customer_token(secret, victim),
        }
        assert client.post("/v1/events", json=good, headers=PUBLIC).status_code == 202
        assert redis_client.get(keys.link_key(f"real-{run}")) == victim
        # The store's own server, with the secret key, needs no token.
        server_side = {**claim, "visitor_id": f"server-{run}"}
        assert client.post("/v1/events", json=server_side, headers=SECRET).status_code == 202
    # Without a token secret configured, browsers cannot link at all.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.post("/v1/events", json=claim, headers=PUBLIC).status_code == 403

"""What the widget relies on: its script, key-in-URL beacons, and the demo shop switch."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import PUBLIC_KEY, SECRET_KEY


def test_the_widget_script_is_served_as_javascript(client: TestClient) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "sendBeacon" in response.text and "data-encore-placement" in response.text


def test_a_beacon_may_carry_the_public_key_in_the_url_but_never_the_secret_one(
    client: TestClient, visitor_id: str
) -> None:
    # sendBeacon posts text/plain and cannot set headers.
    body = f'{{"type": "view", "visitor_id": "{visitor_id}", "item_id": "i000001"}}'
    plain = {"Content-Type": "text/plain"}
    accepted = client.post(f"/v1/events?api_key={PUBLIC_KEY}", content=body, headers=plain)
    assert accepted.status_code == 202, accepted.text
    refused = client.post(f"/v1/events?api_key={SECRET_KEY}", content=body, headers=plain)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert client.post("/v1/events?api_key=nope", content=body).status_code == 401
    # A public key in the URL opens no secret route.
    assert client.get(f"/v1/segments?api_key={PUBLIC_KEY}").status_code == 403


def test_the_demo_shop_is_off_unless_asked_for(client: TestClient) -> None:
    response = client.get("/demo")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get("/demo/image/i000001.svg").status_code == 404

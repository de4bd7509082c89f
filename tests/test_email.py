"""Email renderers: an HTML block per recipient and send, and signed slot redirects."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient

from models.bundle import Bundle
from tests.conftest import PUBLIC, SECRET
from tests.helpers import items_in, send


def test_the_block_shows_the_sends_products_and_its_links_redirect(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i}
                   for i in items_in(bundle, bundle.items[9]["category"])[:3]])  # fmt: skip
    params = {"visitor_id": visitor_id, "send_id": "newsletter-7"}
    response = client.get("/v1/email/block", params=params, headers=SECRET)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    batch = client.post("/v1/recommendations/batch", headers=SECRET, json={"requests": [
        {**params, "placement": "email", "limit": 4}]}).json()["results"][0]  # fmt: skip
    for item in batch["items"]:  # the block is the send's pinned answer
        assert item["title"] in unescape(html)
    links = [unescape(link) for link in re.findall(r'src="([^"]+)"', html)]
    assert len(links) == 4
    first = client.get(links[0].split("testserver", 1)[1], follow_redirects=False)
    assert first.status_code == 302
    assert first.headers["location"] == batch["items"][0]["image_url"]
    page = client.get(links[1].split("testserver", 1)[1].replace("target=image", "target=page"),
                      follow_redirects=False)  # fmt: skip
    assert page.headers["location"] == batch["items"][1]["url"]


def test_slot_links_must_be_signed_and_known(client: TestClient, visitor_id: str) -> None:
    bad = {"visitor_id": visitor_id, "send_id": "x", "sig": "0" * 32}
    assert client.get("/v1/email/slot/1", params=bad).status_code == 403
    assert client.get("/v1/email/block", params={"visitor_id": visitor_id, "send_id": "x"},
                      headers=PUBLIC).status_code == 403  # fmt: skip
    params = {"visitor_id": visitor_id, "send_id": "x", "template": "nope"}
    unknown = client.get("/v1/email/block", headers=SECRET, params=params)
    assert unknown.status_code == 404

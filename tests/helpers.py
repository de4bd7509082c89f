"""Small helpers the tests share."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi.testclient import TestClient

from models.bundle import Bundle
from tests.conftest import PUBLIC, SECRET


def recommend(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/recommendations", params=params, headers=PUBLIC)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def send(client: TestClient, *events: dict[str, Any]) -> dict[str, Any]:
    """As the storefront would: with the public key, or with the secret key (the store's
    server) for events that name a customer."""
    payload: dict[str, Any] = events[0] if len(events) == 1 else {"events": list(events)}
    names_customer = any("customer_id" in event for event in events)
    response = client.post("/v1/events", json=payload, headers=SECRET if names_customer else PUBLIC)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def categories_of(bundle: Bundle, body: dict[str, Any]) -> Counter[str]:
    return Counter(bundle.items[bundle.index_of[i["item_id"]]]["category"] for i in body["items"])


def items_in(bundle: Bundle, category: str) -> list[str]:
    """In-stock items of a category, most trending first."""
    trending_rank = {int(index): rank for rank, index in enumerate(bundle.trending)}
    members = [
        item["item_id"]
        for item in bundle.items
        if item["category"] == category and item.get("in_stock", True)
    ]
    return sorted(members, key=lambda i: trending_rank.get(bundle.index_of[i], 10**9))

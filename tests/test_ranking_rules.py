"""Serving-side rules on top of model scores: variety, distinct widgets, replenishment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.bundle import Bundle
from server.app import create_app
from settings import Settings
from tests.conftest import SECRET
from tests.helpers import categories_of, items_in, recommend, send


def test_a_category_cap_keeps_a_list_varied(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    category = bundle.items[4]["category"]
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i}
                   for i in items_in(bundle, category)[:3]])  # fmt: skip
    uncapped = recommend(client, visitor_id=visitor_id, limit=10)
    assert max(categories_of(bundle, uncapped).values()) > 2
    capped = recommend(client, visitor_id=visitor_id, limit=10, max_per_category=2)
    assert len(capped["items"]) == 10
    assert max(categories_of(bundle, capped).values()) <= 2
    assert capped["items"][0]["item_id"] == uncapped["items"][0]["item_id"]
    one_each = recommend(client, visitor_id=visitor_id, limit=12, max_per_category=1)
    assert len(one_each["items"]) == 12  # the list widens until the cap leaves enough
    assert set(categories_of(bundle, one_each).values()) == {1}


def test_distinct_widgets_of_one_page_never_repeat_an_item(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    category = bundle.items[5]["category"]
    anchor = items_in(bundle, category)[0]
    send(client, {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": anchor})
    page = [
        {"visitor_id": visitor_id, "placement": "home", "limit": 8},
        {"visitor_id": visitor_id, "placement": "product", "item_id": anchor, "limit": 8},
        {"visitor_id": visitor_id, "placement": "cart", "limit": 8},
    ]
    plain = client.post("/v1/recommendations/batch", json={"requests": page}, headers=SECRET)
    shown = [i["item_id"] for r in plain.json()["results"] for i in r["items"]]
    assert len(shown) > len(set(shown))  # without distinct the widgets overlap
    body = {"requests": page, "distinct": True}
    response = client.post("/v1/recommendations/batch", json=body, headers=SECRET)
    shown = [i["item_id"] for r in response.json()["results"] for i in r["items"]]
    assert len(shown) == 24 and len(set(shown)) == 24


@pytest.fixture
def replenishing_client(settings: Settings, bundle: Bundle) -> Iterator[TestClient]:
    category = bundle.items[6]["category"]
    own = settings.model_copy(update={"replenishable_categories": [category]})
    with TestClient(create_app(own)) as test_client:
        yield test_client


def test_replenishable_purchases_may_be_recommended_again(
    client: TestClient, replenishing_client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    category = bundle.items[6]["category"]
    members = items_in(bundle, category)
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i} for i in members[:3]])
    first = recommend(client, visitor_id=visitor_id, limit=5)["items"][0]["item_id"]
    send(client, {"type": "purchase", "visitor_id": visitor_id, "items": [{"item_id": first}]})
    ordinary = recommend(client, visitor_id=visitor_id, limit=100, category=category)
    assert first not in {i["item_id"] for i in ordinary["items"]}
    again = recommend(replenishing_client, visitor_id=visitor_id, limit=100, category=category)
    assert first in {i["item_id"] for i in again["items"]}


def test_with_exclusion_off_purchases_may_come_back(
    client: TestClient, settings: Settings, bundle: Bundle, visitor_id: str
) -> None:
    category = bundle.items[7]["category"]
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i}
                   for i in items_in(bundle, category)[:3]])  # fmt: skip
    first = recommend(client, visitor_id=visitor_id, limit=5)["items"][0]["item_id"]
    send(client, {"type": "purchase", "visitor_id": visitor_id, "items": [{"item_id": first}]})
    own = settings.model_copy(update={"exclude_purchased": False})
    with TestClient(create_app(own)) as lenient:
        again = recommend(lenient, visitor_id=visitor_id, limit=100, category=category)
    assert first in {i["item_id"] for i in again["items"]}

"""The catalog: upserts, lookups, and out-of-stock items never recommended."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from models.bundle import Bundle
from tests.conftest import PUBLIC, SECRET
from tests.helpers import items_in, recommend, send


@pytest.fixture
def restock(client: TestClient) -> Iterator[list[str]]:
    """Item ids a test takes out of stock; they are put back afterwards."""
    taken: list[str] = []
    yield taken
    if taken:
        items = [{"item_id": i, "in_stock": True} for i in taken]
        assert client.put("/v1/items", json={"items": items}, headers=SECRET).status_code == 200


def test_upsert_merges_fields_and_reads_back(client: TestClient) -> None:
    item = {"item_id": "new-sku-1", "title": "Linen Shirt", "category": "shirts", "price": 49.5,
            "url": "https://shop.example/p/new-sku-1", "tags": ["linen"]}  # fmt: skip
    assert client.put("/v1/items", json={"items": [item]}, headers=SECRET).json() == {"upserted": 1}
    update = {"item_id": "new-sku-1", "price": 39.5, "in_stock": False}
    client.put("/v1/items", json={"items": [update]}, headers=SECRET)
    stored = client.get("/v1/items/new-sku-1", headers=PUBLIC).json()
    assert stored["title"] == "Linen Shirt"
    assert (stored["price"], stored["in_stock"]) == (39.5, False)


@pytest.mark.parametrize(
    "item",
    [
        {"item_id": "x", "price": -1},
        {"item_id": "x", "url": "not a url"},
        {"item_id": "x", "in_stock": "maybe"},
        {"title": "no id"},
        {"item_id": "x", "colour": "red"},
        {"item_id": "x", "attributes": {"big": 2**64}},
        {"item_id": "x", "attributes": {"deep": [[[[[[[[[1]]]]]]]]]}},
    ],
)
def test_bad_items_are_refused(client: TestClient, item: dict[str, object]) -> None:
    response = client.put("/v1/items", json={"items": [item]}, headers=SECRET)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert client.get("/v1/items/x", headers=PUBLIC).status_code == 404


def test_an_item_out_of_stock_is_never_recommended(
    client: TestClient, bundle: Bundle, visitor_id: str, restock: list[str]
) -> None:
    category = bundle.items[3]["category"]
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i}
                   for i in items_in(bundle, category)[:3]])  # fmt: skip
    personal = [i["item_id"] for i in recommend(client, visitor_id=visitor_id)["items"]]
    trending = [i["item_id"] for i in recommend(client, visitor_id="nobody-yet")["items"]]
    gone = [personal[0], trending[0]]
    restock.extend(gone)
    body = {"items": [{"item_id": i, "in_stock": False} for i in gone]}
    assert client.put("/v1/items", json=body, headers=SECRET).status_code == 200

    seen = set()
    seen |= {i["item_id"] for i in recommend(client, visitor_id=visitor_id, limit=100)["items"]}
    seen |= {i["item_id"] for i in recommend(client, visitor_id="nobody-yet", limit=100)["items"]}
    for anchor in personal[1:4]:
        seen |= {i["item_id"] for i in client.get(f"/v1/items/{anchor}/similar?limit=100",
                                                   headers=PUBLIC).json()["items"]}  # fmt: skip
    assert not seen & set(gone)
    assert personal[1] in seen  # the rest of the list is still there

    client.put("/v1/items", json={"items": [{"item_id": personal[0], "in_stock": True}]},
               headers=SECRET)  # fmt: skip
    assert recommend(client, visitor_id=visitor_id)["items"][0]["item_id"] == personal[0]


def test_a_second_server_sees_catalog_changes_made_through_the_first(
    client: TestClient, bundle: Bundle, restock: list[str], settings: object
) -> None:
    from server.app import create_app

    top = recommend(client, visitor_id="replica-check")["items"][0]["item_id"]
    with TestClient(create_app(settings)) as replica:  # type: ignore[arg-type]
        assert recommend(replica, visitor_id="replica-check")["items"][0]["item_id"] == top
        restock.append(top)
        body = {"items": [{"item_id": top, "in_stock": False}]}
        assert client.put("/v1/items", json=body, headers=SECRET).status_code == 200
        after = {i["item_id"] for i in recommend(replica, visitor_id="replica-check")["items"]}
        assert top not in after


def test_concurrent_partial_updates_never_undo_each_other(valkey: str) -> None:
    import asyncio

    from state import catalog as catalog_store
    from state.connection import connect

    fields = {f"attribute_{n}": n for n in range(8)}

    async def race(round_: int) -> dict[str, object] | None:
        clients = [connect(valkey) for _ in fields]
        item_id = f"race-{round_}"
        await catalog_store.upsert_items(clients[0], [{"item_id": item_id, "price": 10.0}])
        await asyncio.gather(
            *(
                catalog_store.upsert_items(redis, [{"item_id": item_id, name: value}])
                for redis, (name, value) in zip(clients, fields.items(), strict=True)
            )
        )
        stored = await catalog_store.get_item(clients[0], item_id)
        for redis in clients:
            await redis.aclose()
        return stored

    for round_ in range(10):
        assert asyncio.run(race(round_)) == {"item_id": f"race-{round_}", "price": 10.0, **fields}

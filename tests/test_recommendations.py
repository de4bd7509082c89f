"""Recommendations that react to the visitor's latest clicks, and the ranking rules."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from fastapi.testclient import TestClient

from campaigns.attribution import RecommendationTag, parse_recommendation_id
from models.bundle import Bundle
from server.schemas import RecommendationQuery
from tests.conftest import PUBLIC, SECRET
from tests.helpers import categories_of, items_in, recommend, send


def least_trending_category(bundle: Bundle, body_categories: set[str]) -> str:
    categories = sorted({item["category"] for item in bundle.items})
    return next(c for c in categories if c not in body_categories)


def test_a_new_visitor_gets_trending_items_with_ids_and_reasons(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    body = recommend(client, visitor_id=visitor_id)
    assert body["strategy"] == "trending"
    assert body["model_version"] == bundle.version
    # The id names its answer, so a click on it can be credited without a lookup.
    assert parse_recommendation_id(body["recommendation_id"]) == RecommendationTag(
        "home", bundle.version
    )
    assert body["experiment"] is None
    assert len(body["items"]) == 10
    assert all(item["reason"].startswith("trending") for item in body["items"])
    assert all(item["title"] and item["url"] for item in body["items"])
    trending_ids = [bundle.items[i]["item_id"] for i in bundle.trending[:40]]
    assert [item["item_id"] for item in body["items"]] == [
        i for i in trending_ids if bundle.items[bundle.index_of[i]].get("in_stock", True)
    ][:10]


def test_three_views_in_one_category_turn_the_next_answer_to_it(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    before = recommend(client, visitor_id=visitor_id, placement="home", limit=10)
    for category in sorted({item["category"] for item in bundle.items}):
        if categories_of(bundle, before)[category] >= 5:
            continue  # the claim "they were not before" must be testable
        viewed = items_in(bundle, category)[3:6]
        send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i} for i in viewed])
        after = recommend(client, visitor_id=visitor_id, placement="home", limit=10)
        assert after["strategy"] == "personal"
        assert categories_of(bundle, after)[category] > 5, categories_of(bundle, after)
        assert not {i["item_id"] for i in after["items"]} & set(viewed)
        titles = {bundle.items[bundle.index_of[i]]["title"] for i in viewed}
        assert all(any(t in item["reason"] for t in titles) for item in after["items"])
        return
    raise AssertionError("every category dominated the trending list")


def test_reaction_holds_for_every_category(client: TestClient, bundle: Bundle) -> None:
    categories = sorted({item["category"] for item in bundle.items})
    for n, category in enumerate(categories):
        visitor = f"every-category-{n}-{bundle.version}"
        viewed = items_in(bundle, category)[:3]
        send(client, *[{"type": "view", "visitor_id": visitor, "item_id": i} for i in viewed])
        after = recommend(client, visitor_id=visitor, limit=10)
        assert categories_of(bundle, after)[category] > 5, (category, categories_of(bundle, after))


def test_purchased_items_are_not_recommended(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    category = bundle.items[0]["category"]
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i}
                   for i in items_in(bundle, category)[:3]])  # fmt: skip
    first = recommend(client, visitor_id=visitor_id)["items"][0]["item_id"]
    send(client, {"type": "purchase", "visitor_id": visitor_id, "items": [{"item_id": first}]})
    after = recommend(client, visitor_id=visitor_id, limit=50)
    assert first not in {item["item_id"] for item in after["items"]}


def test_exclude_and_category_filters(client: TestClient, bundle: Bundle, visitor_id: str) -> None:
    category = bundle.items[1]["category"]
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i}
                   for i in items_in(bundle, category)[:3]])  # fmt: skip
    top = [i["item_id"] for i in recommend(client, visitor_id=visitor_id, limit=3)["items"]]
    excluded = recommend(client, visitor_id=visitor_id, limit=10, exclude=top[:2])
    assert not set(top[:2]) & {i["item_id"] for i in excluded["items"]}
    other = next(c for c in sorted({i["category"] for i in bundle.items}) if c != category)
    filtered = recommend(client, visitor_id=visitor_id, limit=10, category=other)
    assert filtered["items"] and categories_of(bundle, filtered) == {other: len(filtered["items"])}


def test_product_placement_shows_similar_items(client: TestClient, bundle: Bundle) -> None:
    anchor = items_in(bundle, bundle.items[2]["category"])[0]
    body = recommend(client, visitor_id="product-page", placement="product", item_id=anchor)
    assert body["strategy"] == "similar"
    assert anchor not in {i["item_id"] for i in body["items"]}
    title = bundle.items[bundle.index_of[anchor]]["title"]
    assert body["items"][0]["reason"] == f"similar to {title}"
    response = client.get(
        "/v1/recommendations", params={"visitor_id": "x", "placement": "product"}, headers=PUBLIC
    )
    assert response.status_code == 422


def test_cart_placement_shows_what_is_bought_with_the_cart(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    anchor = max(range(bundle.n_items), key=lambda i: len(bundle.bought_together(i)[0]))
    anchor_id = bundle.items[anchor]["item_id"]
    send(client, {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": anchor_id})
    body = recommend(client, visitor_id=visitor_id, placement="cart", limit=5)
    assert body["strategy"] == "bought_together"
    partners = {bundle.items[i]["item_id"] for i in bundle.bought_together(anchor)[0]}
    assert body["items"][0]["item_id"] in partners
    assert anchor_id not in {i["item_id"] for i in body["items"]}


def test_item_endpoints(client: TestClient, bundle: Bundle) -> None:
    item_id = bundle.items[bundle.trending[0]]["item_id"]
    similar = client.get(f"/v1/items/{item_id}/similar?limit=4", headers=PUBLIC).json()
    assert len(similar["items"]) == 4 and item_id not in {i["item_id"] for i in similar["items"]}
    together = client.get(f"/v1/items/{item_id}/bought-together", headers=PUBLIC).json()
    assert together["strategy"] == "bought_together"
    trending = client.get("/v1/trending?category=books&limit=5", headers=PUBLIC).json()
    assert len(trending["items"]) == 5
    assert {i["category"] for i in trending["items"]} == {"books"}
    assert client.get("/v1/items/nope/similar", headers=PUBLIC).status_code == 404
    assert client.get("/v1/items/nope", headers=PUBLIC).status_code == 404
    assert client.get(f"/v1/items/{item_id}", headers=PUBLIC).json()["item_id"] == item_id


def test_limits_are_validated(client: TestClient) -> None:
    for limit in (0, 101, "many"):
        response = client.get(f"/v1/recommendations?visitor_id=a&limit={limit}", headers=PUBLIC)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"
    response = client.get("/v1/recommendations?visitor_id=a&placement=moon", headers=PUBLIC)
    assert response.status_code == 422


def test_batch_answers_in_request_order(client: TestClient, bundle: Bundle) -> None:
    requests = [
        {"visitor_id": "batch-a", "limit": 3},
        {"visitor_id": "batch-b", "placement": "email", "limit": 2, "category": "toys"},
    ]
    response = client.post("/v1/recommendations/batch", json={"requests": requests}, headers=SECRET)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [len(r["items"]) for r in results] == [3, 2]
    assert results[1]["placement"] == "email"
    assert {i["category"] for i in results[1]["items"]} == {"toys"}


def test_a_batch_answers_each_recipient_as_a_single_request_would(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    """The batch reads every history at once: linked customers, purchases and a
    recipient asked for twice must come out as they do one request at a time."""
    categories = sorted({item["category"] for item in bundle.items})
    browser, device, buyer = f"{visitor_id}-b", f"{visitor_id}-d", f"{visitor_id}-p"
    first, second = items_in(bundle, categories[0]), items_in(bundle, categories[1])
    send(client, *[{"type": "view", "visitor_id": browser, "item_id": i} for i in first[2:5]])
    send(
        client,
        {"type": "signup", "visitor_id": device, "customer_id": f"{visitor_id}-c"},
        *[{"type": "view", "visitor_id": device, "item_id": i} for i in second[2:5]],
    )
    send(client, {"type": "purchase", "visitor_id": buyer, "item_id": first[0], "value": 9})
    send(client, {"type": "add_to_cart", "visitor_id": buyer, "item_id": second[0]})
    requests = [
        {"visitor_id": browser, "limit": 5},
        {"visitor_id": device, "placement": "email", "limit": 4},
        {"visitor_id": buyer, "placement": "cart", "limit": 3},
        {"visitor_id": f"{visitor_id}-new", "limit": 2},
        {"visitor_id": browser, "limit": 3, "category": categories[0]},
    ]
    response = client.post("/v1/recommendations/batch", json={"requests": requests}, headers=SECRET)
    assert response.status_code == 200, response.text
    batch = response.json()["results"]

    def shown(answer: dict[str, Any]) -> tuple[Any, ...]:
        items = [(i["item_id"], i["reason"], round(i["score"], 4)) for i in answer["items"]]
        return answer["strategy"], answer["placement"], items

    singles = [recommend(client, **query) for query in requests]
    assert [shown(answer) for answer in batch] == [shown(answer) for answer in singles]
    # Recipients pinned to an email send take their own path; the order still holds.
    mixed = [{**requests[2], "send_id": f"{visitor_id}-send"}, *requests[:2]]
    response = client.post("/v1/recommendations/batch", json={"requests": mixed}, headers=SECRET)
    assert [shown(answer) for answer in response.json()["results"]] == [
        shown(singles[2]), shown(singles[0]), shown(singles[1])
    ]  # fmt: skip
    assert [answer["strategy"] for answer in batch] == [
        "personal", "personal", "bought_together", "trending", "personal"
    ]  # fmt: skip
    assert first[0] not in {item["item_id"] for item in batch[2]["items"]}  # bought already


def test_a_long_batch_lets_the_workers_other_requests_in_between(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    """A batch ranks its recipients in chunks and yields between them: a storefront
    request on the same worker waits for a chunk, not for the whole batch."""
    recipients = [f"{visitor_id}-{n}" for n in range(300)]
    item_ids = [item["item_id"] for item in bundle.items]
    views = [
        {"type": "view", "visitor_id": recipient, "item_id": item_ids[(7 * n + k) % len(item_ids)]}
        for n, recipient in enumerate(recipients)
        for k in range(3)
    ]
    send(client, *views)  # personal ranking for everyone: the batch's long part
    service = client.app.state.recommendations  # type: ignore[attr-defined]
    queries = [RecommendationQuery(visitor_id=recipient, limit=5) for recipient in recipients]

    # Timed in the event loop thread's CPU seconds: a stretch without a tick is work
    # that held the loop, and a busy machine descheduling the thread does not count.
    # The ticker wakes every millisecond rather than spinning, so it adds no CPU itself.
    async def batch_beside_a_ticker() -> tuple[list[float], float, int]:
        ticks: list[float] = []
        running = True

        async def ticker() -> None:
            while running:
                ticks.append(time.thread_time())
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        started = time.thread_time()
        answers = await service.answer_many(queries)
        ticks.append(time.thread_time())  # the loop is free again: the last stretch ends
        elapsed = ticks[-1] - started
        running = False
        await task
        return ticks, elapsed, len(answers)

    assert client.portal is not None
    ticks, elapsed, answered = client.portal.call(batch_beside_a_ticker)
    assert answered == len(queries)
    longest_wait = max(later - earlier for earlier, later in itertools.pairwise(ticks))
    assert longest_wait < elapsed / 2, (longest_wait, elapsed)


def test_a_full_batch_of_1000_recipients_is_answered(client: TestClient) -> None:
    requests = [{"visitor_id": f"recipient-{n}", "limit": 3} for n in range(1000)]
    response = client.post("/v1/recommendations/batch", json={"requests": requests}, headers=SECRET)
    assert response.status_code == 200, response.text[:200]
    results = response.json()["results"]
    assert len(results) == 1000 and all(len(r["items"]) == 3 for r in results)
    too_many = {"requests": requests + requests[:1]}
    assert (
        client.post("/v1/recommendations/batch", json=too_many, headers=SECRET).status_code == 422
    )


def test_a_send_shows_each_recipient_the_same_items_on_every_open(
    client: TestClient, bundle: Bundle, visitor_id: str
) -> None:
    def email(send_id: str) -> list[str]:
        requests = [{"visitor_id": visitor_id, "placement": "email", "limit": 5,
                     "send_id": send_id}]  # fmt: skip
        response = client.post("/v1/recommendations/batch", json={"requests": requests},
                               headers=SECRET)  # fmt: skip
        return [item["item_id"] for item in response.json()["results"][0]["items"]]

    first_open = email("spring-sale")
    category = bundle.items[8]["category"]
    send(client, *[{"type": "view", "visitor_id": visitor_id, "item_id": i}
                   for i in items_in(bundle, category)[:3]])  # fmt: skip
    assert email("spring-sale") == first_open  # re-opened after new behaviour: unchanged
    assert email("summer-sale") != first_open  # a new send reflects the new behaviour

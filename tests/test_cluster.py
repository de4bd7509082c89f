"""The API against a real 3-master Redis Cluster, with a visitor and its customer kept
on different nodes on purpose: a node refuses any script that reaches for another
node's keys, so every cross-person step has to be slot-local to pass.

`make test-cluster` runs the API test modules against a cluster as well; this module
is in every `make test`, so the cluster path never goes untested.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from server.app import create_app
from settings import Settings
from state import keys, logged_events
from state.cluster import EmbeddedCluster
from tests.conftest import PUBLIC, SECRET, sync_client
from tests.helpers import recommend, send
from tests.test_privacy import everything_mentioning

EXAMPLE = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("cluster"))
    yield cluster.start()
    cluster.stop()


@pytest.fixture(scope="module")
def inspector(cluster_url: str) -> Iterator[redis.Redis]:
    connection = sync_client(cluster_url)
    yield connection
    connection.close()


@pytest.fixture
def campaigns(tmp_path: Path) -> Path:
    """The example campaigns without its A/B experiment: a visitor's variant would
    otherwise decide whether home recommendations are personal."""
    text = EXAMPLE.read_text()
    start = text.index("\nexperiments:")
    end = text.index("\n# ", start)
    path = tmp_path / "campaigns.yaml"
    path.write_text(text[:start] + text[end:])
    return path


@pytest.fixture
def api(cluster_url: str, settings: Settings, campaigns: Path) -> Iterator[TestClient]:
    on_cluster = settings.model_copy(update={"redis_url": cluster_url, "campaigns_file": campaigns})
    with TestClient(create_app(on_cluster)) as client:
        yield client


def node_of(inspector: redis.Redis, person: str) -> str:
    cluster: Any = inspector
    return str(cluster.get_node_from_key(keys.person_key("profile", person)).name)


def apart(inspector: redis.Redis) -> tuple[str, str]:
    """A fresh visitor id and customer id whose keys live on different nodes."""
    run = uuid.uuid4().hex[:8]
    visitor = f"phone-{run}"
    home = node_of(inspector, keys.visitor_person(visitor))
    customer = next(
        f"anna-{run}-{n}"
        for n in range(100)
        if node_of(inspector, keys.customer_person(f"anna-{run}-{n}")) != home
    )
    return visitor, customer


def stream_ids(inspector: redis.Redis, run: str) -> list[str]:
    entries: Any = inspector.xrange(keys.EVENTS_STREAM)
    events = [logged_events.decode(fields).row for _, fields in entries]
    return [e["event_id"] for e in events if e.get("event_id", "").startswith(run)]


def test_events_offers_and_a_merge_across_nodes_then_erasure(
    api: TestClient, inspector: redis.Redis
) -> None:
    visitor, customer = apart(inspector)
    run = visitor
    viewed = ["i000001", "i000002", "i000003"]
    events = [
        {"event_id": f"{run}-v{n}", "type": "view", "visitor_id": visitor, "item_id": item}
        for n, item in enumerate(viewed)
    ]
    events += [
        {"event_id": f"{run}-cart", "type": "add_to_cart", "visitor_id": visitor,
         "item_id": "i000004"},
        {"event_id": f"{run}-late", "type": "shipment_delayed", "visitor_id": visitor},
    ]  # fmt: skip
    assert send(api, *events) == {"accepted": 5, "duplicates": 0}
    assert send(api, events[0]) == {"accepted": 0, "duplicates": 1}

    offers = api.get("/v1/offers", params={"visitor_id": visitor}, headers=PUBLIC).json()
    assert "delay-apology" in {offer["offer_id"] for offer in offers["offers"]}
    redeem = {"visitor_id": visitor, "order_id": f"{run}-o1"}
    answer = api.post("/v1/offers/delay-apology/redeem", json=redeem, headers=SECRET)
    assert answer.json()["status"] == "redeemed"
    again = api.post("/v1/offers/delay-apology/redeem", json=redeem, headers=SECRET)
    assert again.json()["status"] == "duplicate"

    # Signing in moves everything from the visitor's node to the customer's.
    signup = {"event_id": f"{run}-signup", "type": "signup", "visitor_id": visitor,
              "customer_id": customer, "properties": {"email_opt_in": True}}  # fmt: skip
    assert send(api, signup)["accepted"] == 1
    assert send(api, signup)["duplicates"] == 1
    profile = api.get(f"/v1/visitors/{visitor}", headers=SECRET).json()
    assert profile["customer_id"] == customer
    assert profile["person"] == keys.customer_person(customer)
    assert profile["events"] == 6
    assert profile["cart"] == {"i000004": 1}
    assert {item["item_id"] for item in profile["recent_items"]} >= set(viewed)
    assert not inspector.exists(keys.person_key("profile", keys.visitor_person(visitor)))
    # The redemption followed the visitor: the apology is not offered to the customer again.
    offers = api.get("/v1/offers", params={"visitor_id": visitor}, headers=PUBLIC).json()
    assert "delay-apology" not in {offer["offer_id"] for offer in offers["offers"]}

    body = recommend(api, visitor_id=visitor)
    assert body["experiment"] is None and body["strategy"] == "personal"
    assert not {item["item_id"] for item in body["items"]} & set(viewed)

    expected = sorted([*(str(e["event_id"]) for e in events), str(signup["event_id"])])
    assert sorted(stream_ids(inspector, run)) == expected  # each acknowledged event once

    erased = api.delete(f"/v1/visitors/{visitor}", headers=SECRET)
    assert erased.status_code == 200, erased.text
    assert erased.json()["stream_entries"] == 6
    assert everything_mentioning(inspector, [visitor, customer]) == []
    assert api.get(f"/v1/visitors/{visitor}", headers=SECRET).status_code == 404


def test_retention_counts_a_merged_buyer_once_on_a_cluster(
    api: TestClient, inspector: redis.Redis
) -> None:
    visitor, customer = apart(inspector)
    order = {"type": "purchase", "value": 20.0, "item_id": "i000005"}
    send(
        api,
        {**order, "visitor_id": visitor, "order_id": f"{visitor}-1",
         "timestamp": "1997-01-10T10:00:00Z"},
        {**order, "visitor_id": visitor, "customer_id": customer, "order_id": f"{visitor}-2",
         "timestamp": "1997-02-10T10:00:00Z"},
    )  # fmt: skip
    answer = api.get(
        "/v1/dashboard", params={"end": "1997-02", "months": 2, "active_months": 1}, headers=SECRET
    )
    assert answer.status_code == 200, answer.text
    january, february = answer.json()["retention"]
    assert (january["buyers"], january["new_customers"]) == (1, 1)
    assert (february["buyers"], february["new_customers"]) == (1, 0)
    assert inspector.smembers(keys.buyers_key("1997-01")) == {keys.customer_person(customer)}

"""Experiments, attribution and retention through the API, counted in the real Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from campaigns.config import Campaigns
from campaigns.experiments import Experiment, Strategy, Variant
from models.bundle import Bundle
from state import keys
from tests.conftest import PUBLIC, SECRET
from tests.helpers import items_in, recommend, send


@pytest.fixture
def experiment(client: TestClient) -> Experiment:
    """A fresh personal-versus-holdout experiment on the home placement."""
    running = Experiment(
        name=f"e{uuid.uuid4().hex[:12]}",
        placements=["home"],
        variants=[
            Variant(name="personal", weight=1),
            Variant(name="holdout", weight=1, strategy=Strategy.TRENDING, holdout=True),
        ],
    )
    store: Any = client.app.state.campaigns  # type: ignore[attr-defined]
    store.current = Campaigns(experiments=[running])
    return running


def visitor_in(experiment: Experiment, variant: str) -> str:
    while True:
        candidate = f"t-{uuid.uuid4().hex}"
        if experiment.assign(candidate).name == variant:
            return candidate


def iso(moment: datetime) -> str:
    return moment.isoformat()


def attributed(redis_client: redis.Redis, measure: str, dimension: str, key: str) -> float:
    value = redis_client.hget(keys.ATTRIBUTION, keys.attribution_field(measure, dimension, key))
    return float(str(value)) if value is not None else 0.0


def test_the_variant_is_sticky_and_shown_and_the_holdout_is_not_personalised(
    client: TestClient, bundle: Bundle, experiment: Experiment
) -> None:
    treated = visitor_in(experiment, "personal")
    control = visitor_in(experiment, "holdout")
    category = sorted({item["category"] for item in bundle.items})[0]
    for visitor in (treated, control):
        send(client, *({"type": "view", "visitor_id": visitor, "item_id": i}
                       for i in items_in(bundle, category)[:3]))  # fmt: skip
    answers = [recommend(client, visitor_id=treated) for _ in range(3)]
    assert {a["experiment"]["variant"] for a in answers} == {"personal"}
    assert answers[0]["strategy"] == "personal"
    held = recommend(client, visitor_id=control)
    assert held["experiment"] == {"name": experiment.name, "variant": "holdout", "holdout": True}
    assert held["strategy"] == "trending"
    trending = client.get("/v1/trending", headers=PUBLIC).json()
    assert [i["item_id"] for i in held["items"]] == [i["item_id"] for i in trending["items"]]
    # Placements the experiment does not run on are left alone.
    cart = recommend(client, visitor_id=control, placement="cart")
    assert cart["experiment"] is None


def test_clicks_and_orders_are_credited_once_to_placement_model_and_variant(
    client: TestClient, bundle: Bundle, experiment: Experiment, redis_client: redis.Redis
) -> None:
    visitor = visitor_in(experiment, "personal")
    answer = recommend(client, visitor_id=visitor)
    rec_id, clicked = answer["recommendation_id"], answer["items"][0]["item_id"]
    other = next(i["item_id"] for i in bundle.items if i["item_id"] != clicked)
    before = attributed(redis_client, "revenue", "placement", "home")
    send(
        client,
        {"type": "rec_impression", "visitor_id": visitor, "recommendation_id": rec_id},
        {
            "type": "rec_click",
            "visitor_id": visitor,
            "item_id": clicked,
            "recommendation_id": rec_id,
        },
    )
    order = {
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "purchase", "visitor_id": visitor,
        "order_id": f"o-{uuid.uuid4().hex}", "value": 100.0,
        "items": [{"item_id": clicked, "price": 40.0}, {"item_id": other, "price": 60.0}],
    }  # fmt: skip
    send(client, order)
    assert send(client, order) == {"accepted": 0, "duplicates": 1}  # a retry
    send(client, {**order, "event_id": f"ev-{uuid.uuid4().hex}"})  # the same order again
    # Only the clicked line's share of the order is the recommendation's.
    assert attributed(redis_client, "revenue", "placement", "home") == pytest.approx(before + 40)
    model = answer["model_version"]
    assert attributed(redis_client, "revenue", "model", model) >= 40
    assert attributed(redis_client, "revenue", "variant", f"{experiment.name}/personal") == 40
    send(client, {"type": "purchase", "visitor_id": visitor, "order_id": f"o-{uuid.uuid4().hex}",
                  "items": [{"item_id": other, "price": 50.0}]})  # fmt: skip
    totals = redis_client.hgetall(keys.variant_key(experiment.name, "personal"))
    assert {name: float(value) for name, value in totals.items()} == {
        "visitors": 1, "impressions": 1, "clicks": 1, "converters": 1, "repeaters": 1,
        "revenue": 150.0, "revenue_sq": 150.0**2,
    }  # fmt: skip


def test_clicks_outside_the_window_earn_nothing_and_messages_earn_the_order(
    client: TestClient, bundle: Bundle, redis_client: redis.Redis, visitor_id: str
) -> None:
    now = datetime.now(UTC)
    click_at, message_at = iso(now - timedelta(hours=25)), iso(now - timedelta(hours=2))
    answer = recommend(client, visitor_id=visitor_id, placement="cart")
    clicked = answer["items"][0]["item_id"]
    before_cart = attributed(redis_client, "revenue", "placement", "cart")
    journey = "win_back"
    before_journey = attributed(redis_client, "revenue", "journey", journey)
    before_orders = attributed(redis_client, "orders", "journey", journey)
    send(
        client,
        {"type": "rec_click", "visitor_id": visitor_id, "item_id": clicked,
         "recommendation_id": answer["recommendation_id"], "timestamp": click_at},
        {"type": "email_click", "visitor_id": visitor_id, "properties": {"journey": journey},
         "timestamp": message_at},
        {"type": "purchase", "visitor_id": visitor_id, "order_id": f"o-{uuid.uuid4().hex}",
         "value": 80.0, "items": [{"item_id": clicked}], "properties": {"offer_id": "welcome"},
         "timestamp": iso(now)},
    )  # fmt: skip
    assert attributed(redis_client, "revenue", "placement", "cart") == before_cart
    assert attributed(redis_client, "revenue", "journey", journey) == before_journey + 80.0
    assert attributed(redis_client, "orders", "journey", journey) == before_orders + 1
    # "welcome" is no offer of the campaigns in force: nothing is counted under it.
    assert attributed(redis_client, "orders", "offer", "welcome") == 0


def test_made_up_names_cannot_grow_the_counters(
    client: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    """Recommendation ids, journeys and offer ids come from browsers: unknown ones are
    folded into "other" or dropped, so a script cannot mint counters."""
    fields_before = redis_client.hlen(keys.ATTRIBUTION)
    forged = [f"{n:012x}.home.v{n}.exp{n}.var{n}" for n in range(20)]
    send(client, *({"type": "rec_click", "visitor_id": visitor_id, "item_id": "i000001",
                    "recommendation_id": rid} for rid in forged),
         *({"type": "email_open", "visitor_id": visitor_id, "properties": {"journey": f"j{n}"}}
           for n in range(20)),
         {"type": "purchase", "visitor_id": visitor_id, "order_id": f"o-{uuid.uuid4().hex}",
          "value": 5.0, "item_id": "i000001", "properties": {"offer_id": "made-up"}})  # fmt: skip
    fields = set(redis_client.hkeys(keys.ATTRIBUTION))
    assert len(fields) - fields_before <= 6  # placement and "other" model: clicks, orders, revenue
    minted = {f"v{n}" for n in range(20)} | {f"j{n}" for n in range(20)} | {"made-up"}
    assert not any(str(field).split("|")[2] in minted for field in fields)
    assert attributed(redis_client, "clicks", "model", "other") >= 20
    assert not any(redis_client.scan_iter(match=keys.variant_key("exp*", "*")))


def test_the_dashboard_reports_variants_with_intervals_and_uplift(
    client: TestClient, experiment: Experiment
) -> None:
    for variant, spend in (("personal", [30.0, 50.0, 0.0]), ("holdout", [10.0, 0.0, 0.0])):
        for amount in spend:
            visitor = visitor_in(experiment, variant)
            rec_id = recommend(client, visitor_id=visitor)["recommendation_id"]
            send(
                client,
                {"type": "rec_impression", "visitor_id": visitor, "recommendation_id": rec_id},
            )
            if amount:
                order_id = f"o-{uuid.uuid4().hex}"
                send(client, {"type": "purchase", "visitor_id": visitor, "value": amount,
                              "order_id": order_id, "item_id": "anything"})  # fmt: skip
    response = client.get("/v1/dashboard", headers=SECRET)
    assert response.status_code == 200, response.text
    (report,) = [e for e in response.json()["experiments"] if e["name"] == experiment.name]
    personal, holdout = report["variants"]
    assert personal["totals"]["visitors"] == 3 and personal["totals"]["converters"] == 2
    assert personal["conversion"]["value"] == pytest.approx(2 / 3)
    assert personal["revenue_per_visitor"]["value"] == pytest.approx(80 / 3)
    assert personal["uplift"]["revenue_per_visitor"]["value"] == pytest.approx(80 / 3 - 10 / 3)
    low, high = personal["uplift"]["conversion"]["low"], personal["uplift"]["conversion"]["high"]
    assert low < 1 / 3 < high
    assert holdout["uplift"] is None


def test_the_dashboard_computes_crr_for_a_constructed_month(client: TestClient) -> None:
    """Active window two months. March's B: bought in Jan or Feb (A1-4, B1-3, C1-2, D1 = 10);
    E: bought in Feb or Mar (B1-3, D1, C1-2, N1-2 = 8); N: first order in March (2).
    CRR = (8 - 2) / 10 = 60%."""
    run = uuid.uuid4().hex[:8]
    orders = {
        "1995-01": ["A1", "A2", "A3", "A4", "C1", "C2"],
        "1995-02": ["B1", "B2", "B3", "D1"],
        "1995-03": ["C1", "C2", "D1", "N1", "N2"],
    }
    for month, buyers in orders.items():
        send(client, *({"type": "purchase", "visitor_id": f"{run}-{b}", "customer_id": f"{run}-{b}",
                        "order_id": f"{run}-{b}-{month}", "value": 20.0, "item_id": "i1",
                        "timestamp": f"{month}-15T12:00:00Z"} for b in buyers))  # fmt: skip
    response = client.get(
        "/v1/dashboard", params={"end": "1995-03", "months": 2, "active_months": 2}, headers=SECRET
    )
    assert response.status_code == 200, response.text
    february, march = response.json()["retention"]
    assert (march["customers_start"], march["customers_end"], march["new_customers"]) == (10, 8, 2)
    assert march["retention_rate"] == pytest.approx(60.0)
    assert (march["buyers"], march["repeat_buyers"], march["orders"]) == (5, 3, 5)
    assert march["average_order_value"] == pytest.approx(20.0)
    assert march["repeat_purchase_rate"] == pytest.approx(3 / 5)
    # February: B = Jan buyers (6), E = Jan or Feb buyers (10), N = B1-3 and D1 (4): 100%.
    assert february["retention_rate"] == pytest.approx(100.0)


def test_the_dashboard_needs_a_secret_key_and_checks_its_query(client: TestClient) -> None:
    assert client.get("/v1/dashboard").status_code == 401
    assert client.get("/v1/dashboard", headers=PUBLIC).status_code == 403
    for bad in ({"end": "1995-13"}, {"months": 0}, {"active_months": 100}, {"end": "x"}):
        response = client.get("/v1/dashboard", params=bad, headers=SECRET)
        assert response.status_code == 422, bad
        assert "error" in response.json()
    page = client.get("/dashboard")
    assert page.status_code == 200 and "/dashboard.js" in page.text


def test_retention_counts_a_visitor_once_after_it_signs_in(client: TestClient) -> None:
    """Anonymous orders move with the visitor into its customer: the customer is not
    counted twice, and is new in the month of the earliest order of the two."""
    run = uuid.uuid4().hex[:8]
    phone, laptop, anna = f"phone-{run}", f"laptop-{run}", f"anna-{run}"
    order = {"type": "purchase", "value": 10.0, "item_id": "i1"}
    send(
        client,
        # Anonymous on the phone at the very end of January...
        {**order, "visitor_id": phone, "order_id": f"{run}-1", "timestamp": "1996-01-31T23:59:59Z"},
        # ...signed in on the laptop, first order as a customer in March...
        {**order, "visitor_id": laptop, "customer_id": anna, "order_id": f"{run}-2",
         "timestamp": "1996-03-01T00:00:00Z"},
        # ...and the phone signs in in April: its January order is Anna's.
        {"type": "view", "visitor_id": phone, "customer_id": anna, "item_id": "i1",
         "timestamp": "1996-04-02T10:00:00Z"},
    )  # fmt: skip
    response = client.get(
        "/v1/dashboard", params={"end": "1996-03", "months": 3, "active_months": 2}, headers=SECRET
    )
    january, february, march = response.json()["retention"]
    assert (january["buyers"], january["new_customers"]) == (1, 1)
    assert (february["customers_start"], february["customers_end"]) == (1, 1)
    # March: Anna was a customer since January, so she is neither new nor counted twice.
    assert (march["customers_start"], march["customers_end"], march["new_customers"]) == (1, 1, 0)
    assert march["retention_rate"] == pytest.approx(100.0)

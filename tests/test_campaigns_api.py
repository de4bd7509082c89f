"""Every retention tactic of the campaigns file, driven through the HTTP API by events."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from server.app import create_app
from settings import Settings
from state import keys
from tests.conftest import PUBLIC, SECRET
from tests.helpers import send

EXAMPLE = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"


def budget_offer(valid_until: datetime) -> str:
    return f"""
  - id: budget-5
    kind: scarcity
    title: Five only
    discount_type: percentage
    discount_value: 50
    valid_until: {valid_until.isoformat()}
    budget: 5
"""


@pytest.fixture
def campaigns_file(tmp_path: Path) -> Path:
    path = tmp_path / "campaigns.yaml"
    text = EXAMPLE.read_text()
    offers_end = text.index("\n# Triggered journeys")
    soon = datetime.now(UTC) + timedelta(hours=2)
    path.write_text(text[:offers_end] + budget_offer(soon) + text[offers_end:])
    return path


@pytest.fixture
def campaign_settings(settings: Settings, campaigns_file: Path) -> Settings:
    return settings.model_copy(update={"campaigns_file": campaigns_file})


@pytest.fixture
def api(campaign_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(campaign_settings)) as client:
        yield client


def profile(api: TestClient, visitor_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/visitors/{visitor_id}", headers=SECRET)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def offers(api: TestClient, visitor_id: str) -> dict[str, dict[str, Any]]:
    response = api.get("/v1/offers", params={"visitor_id": visitor_id}, headers=PUBLIC)
    assert response.status_code == 200, response.text
    return {offer["offer_id"]: offer for offer in response.json()["offers"]}


def purchase(visitor_id: str, value: float, order: str, **extra: Any) -> dict[str, Any]:
    return {"type": "purchase", "visitor_id": visitor_id, "order_id": order, "value": value,
            "items": [{"item_id": f"sku-{order}"}], **extra}  # fmt: skip


def test_spending_past_800_enters_high_ltv(api: TestClient, visitor_id: str) -> None:
    send(api, purchase(visitor_id, 500, "o1"))
    assert "high_ltv" not in profile(api, visitor_id)["segments"]
    before = {
        s["name"]: s["size"] for s in api.get("/v1/segments", headers=SECRET).json()["segments"]
    }
    send(api, purchase(visitor_id, 350, "o2"))
    shown = profile(api, visitor_id)
    assert {"high_ltv", "repeat"} <= set(shown["segments"])
    after = {
        s["name"]: s["size"] for s in api.get("/v1/segments", headers=SECRET).json()["segments"]
    }
    assert after["high_ltv"] == before["high_ltv"] + 1


def test_one_batch_moves_everyone_it_touched_between_segments(
    api: TestClient, redis_client: redis.Redis, visitor_id: str
) -> None:
    """Read straight from Redis: a profile read would re-evaluate the person itself."""
    big, linked, small = (f"{visitor_id}-{name}" for name in ("big", "linked", "small"))
    customer = keys.customer_person(f"{visitor_id}-customer")
    send(
        api,
        purchase(big, 900, f"{visitor_id}-o1"),
        purchase(linked, 850, f"{visitor_id}-o2", customer_id=f"{visitor_id}-customer"),
        purchase(small, 20, f"{visitor_id}-o3"),
        # A second device of the same customer: one person, evaluated once.
        purchase(f"{linked}-phone", 10, f"{visitor_id}-o4", customer_id=f"{visitor_id}-customer"),
    )

    def members(segment: str) -> set[str]:
        found: Any = redis_client.smembers(keys.segment_key(segment))
        return set(found)

    assert {keys.visitor_person(big), customer} <= members("high_ltv")
    assert keys.visitor_person(linked) not in members("high_ltv")  # its customer is
    assert keys.visitor_person(small) in members("low_spenders") - members("high_ltv")
    assert set(redis_client.smembers(keys.person_key("segments", customer))) >= {
        "high_ltv",
        "repeat",
    }
    returned = {"type": "return_requested", "visitor_id": big, "order_id": f"{visitor_id}-o1"}
    send(api, returned, {"type": "view", "visitor_id": small, "item_id": "i000001"})
    assert keys.visitor_person(big) not in members("high_ltv")
    assert keys.visitor_person(small) in members("low_spenders")


def test_a_batch_refresh_reads_recent_views_only_for_a_rule_that_compares_them(
    campaign_settings: Settings, campaigns_file: Path, redis_client: redis.Redis, visitor_id: str
) -> None:
    """The example's rules compare no viewed category, so refreshes skip the recent list;
    a rule that does compare one gets it read."""
    text = campaigns_file.read_text()
    segments = text.index("segments:\n") + len("segments:\n")
    viewers = "  fitness_browsers:\n    rule: {categories_viewed: {contains: fitness}}\n"
    campaigns_file.write_text(text[:segments] + viewers + text[segments:])
    catalog = {"items": [{"item_id": f"{visitor_id}-mat", "title": "Mat", "category": "fitness",
                          "price": 30.0}]}  # fmt: skip
    with TestClient(create_app(campaign_settings)) as api:
        assert api.put("/v1/items", json=catalog, headers=SECRET).status_code == 200
        view = {"type": "view", "visitor_id": visitor_id, "item_id": f"{visitor_id}-mat"}
        send(api, view, {"type": "view", "visitor_id": f"{visitor_id}-other", "item_id": "i1"})
    members: Any = redis_client.smembers(keys.segment_key("fitness_browsers"))
    assert members == {keys.visitor_person(visitor_id)}


def test_a_delayed_shipment_brings_an_apology_without_a_complaint(
    api: TestClient, visitor_id: str
) -> None:
    send(api, purchase(visitor_id, 60, "o1"))
    assert "delay-apology" not in offers(api, visitor_id)
    send(api, {"type": "shipment_delayed", "visitor_id": visitor_id, "order_id": "o1"})
    apology = offers(api, visitor_id)["delay-apology"]
    assert (apology["discount_type"], apology["discount_value"]) == ("fixed_amount", 10)
    assert apology["free_shipping"] is True
    assert apology["code"] and apology["reason"]


def test_the_birthday_coupon_is_there_on_the_day_only(api: TestClient, visitor_id: str) -> None:
    today = datetime.now(UTC)
    yesterday = today - timedelta(days=1)
    send(api, {"type": "signup", "visitor_id": visitor_id, "customer_id": f"c-{visitor_id}",
               "properties": {"birthday": today.strftime("1990-%m-%d")}})  # fmt: skip
    coupon = offers(api, visitor_id)["birthday-35"]
    assert coupon["discount_value"] == 35
    expires = datetime.fromisoformat(coupon["expires_at"])
    assert expires - today <= timedelta(hours=24) and expires > today
    other = f"{visitor_id}-2"
    send(api, {"type": "signup", "visitor_id": other, "customer_id": f"c-{other}",
               "properties": {"birthday": yesterday.strftime("1990-%m-%d")}})  # fmt: skip
    assert "birthday-35" not in offers(api, other)


def test_a_wishlist_add_discounts_that_item(api: TestClient, visitor_id: str) -> None:
    scarf = {"item_id": "wish-1", "title": "Silk Scarf", "price": 80, "in_stock": True}
    api.put("/v1/items", json={"items": [scarf]}, headers=SECRET)
    send(api, {"type": "wishlist_add", "visitor_id": visitor_id, "item_id": "wish-1"})
    offer = offers(api, visitor_id)["wishlist-10"]
    assert offer["item_id"] == "wish-1" and "Silk Scarf" in offer["reason"]


def test_points_accrue_by_tier_once_per_order_and_reverse_on_return(
    api: TestClient, visitor_id: str
) -> None:
    first = purchase(visitor_id, 40, "o1", event_id=f"{visitor_id}-o1")
    send(api, first)
    send(api, first)  # the same event again: no double points
    send(api, purchase(visitor_id, 40, "o1"))  # the same order under another event id
    assert profile(api, visitor_id)["loyalty"]["points"] == 80  # 2 per dollar at the base
    send(api, purchase(visitor_id, 800, "o2"))  # still earned at the base rate
    shown = profile(api, visitor_id)["loyalty"]
    assert (shown["tier"], shown["points"]) == ("gold", 80 + 1600)
    send(api, purchase(visitor_id, 100, "o3"))  # now at the top tier: 6 per dollar
    assert profile(api, visitor_id)["loyalty"]["points"] == 80 + 1600 + 600
    send(api, {"type": "return_requested", "visitor_id": visitor_id, "order_id": "o3"})
    shown = profile(api, visitor_id)
    assert shown["loyalty"]["points"] == 80 + 1600
    assert (shown["orders"], shown["lifetime_value"]) == (2, 840.0)


def test_rewards_need_100_points_a_repeat_order_and_10_dollars(
    api: TestClient, visitor_id: str
) -> None:
    send(api, purchase(visitor_id, 45, "o1"))  # 90 points
    assert "loyalty-reward" not in offers(api, visitor_id)
    send(api, purchase(visitor_id, 10, "o2"))  # 110 points
    reward = offers(api, visitor_id)["loyalty-reward"]
    assert (reward["discount_value"], reward["min_order_value"]) == (11, 10)
    small = {"visitor_id": visitor_id, "order_id": "o3", "order_value": 9.5}
    refused = api.post("/v1/offers/loyalty-reward/redeem", json=small, headers=SECRET)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "below_minimum"
    ok = {"visitor_id": visitor_id, "order_id": "o3", "order_value": 30, "code": reward["code"]}
    assert api.post("/v1/offers/loyalty-reward/redeem", json=ok, headers=SECRET).status_code == 200
    assert profile(api, visitor_id)["loyalty"]["points"] == 0  # 110 points bought 11%


def test_lapsed_customers_get_the_win_back_offer(api: TestClient, visitor_id: str) -> None:
    long_ago = (datetime.now(UTC) - timedelta(days=200)).isoformat()
    send(api, purchase(visitor_id, 30, "o1", timestamp=long_ago))
    assert "lapsed" in profile(api, visitor_id)["segments"]
    assert "win-back-15" in offers(api, visitor_id)


def test_content_fills_the_free_shipping_gap_from_the_live_cart(
    api: TestClient, visitor_id: str
) -> None:
    api.put("/v1/items", json={"items": [{"item_id": "mug", "price": 19}]}, headers=SECRET)
    send(api, {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": "mug",
               "items": [{"item_id": "mug", "quantity": 2}]})  # fmt: skip
    blocks = api.get("/v1/content", params={"visitor_id": visitor_id, "slot": "cart_banner"},
                     headers=PUBLIC).json()["blocks"]  # fmt: skip
    assert [b["text"] for b in blocks] == ["You are $12.00 away from free shipping"]
    send(api, {"type": "add_to_cart", "visitor_id": visitor_id, "item_id": "mug"})
    blocks = api.get("/v1/content", params={"visitor_id": visitor_id, "slot": "cart_banner"},
                     headers=PUBLIC).json()["blocks"]  # fmt: skip
    assert blocks == []  # $57 already ships free


def test_one_offer_redeemed_50_times_at_once_succeeds_once(
    campaign_settings: Settings, visitor_id: str
) -> None:
    app = create_app(campaign_settings)

    async def storm() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://encore") as client:
                await client.post("/v1/events", headers=PUBLIC, json={"type": "wishlist_add",
                                  "visitor_id": visitor_id, "item_id": "i000001"})  # fmt: skip
                calls = [
                    client.post("/v1/offers/wishlist-10/redeem", headers=SECRET,
                                json={"visitor_id": visitor_id, "order_id": f"o-{n}"})
                    for n in range(50)
                ]  # fmt: skip
                return list(await asyncio.gather(*calls))

    statuses = sorted(response.status_code for response in asyncio.run(storm()))
    assert statuses == [200] + [409] * 49


def test_a_budget_is_never_overspent_under_concurrency(campaign_settings: Settings) -> None:
    app = create_app(campaign_settings)
    people = [f"budget-{n}-{datetime.now(UTC).timestamp()}" for n in range(20)]

    async def storm() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://encore") as client:
                events = [{"type": "view", "visitor_id": p, "item_id": "i000001"} for p in people]
                await client.post("/v1/events", json={"events": events}, headers=PUBLIC)
                calls = [
                    client.post("/v1/offers/budget-5/redeem", headers=SECRET,
                                json={"visitor_id": p, "order_id": f"order-{p}"})
                    for p in people
                ]  # fmt: skip
                return list(await asyncio.gather(*calls))

    responses = asyncio.run(storm())
    assert sum(r.status_code == 200 for r in responses) == 5
    refusals = {r.json()["error"]["code"] for r in responses if r.status_code != 200}
    assert refusals <= {"budget_exhausted", "not_eligible"}


def test_redeeming_the_same_order_again_is_idempotent(api: TestClient, visitor_id: str) -> None:
    send(api, {"type": "shipment_delayed", "visitor_id": visitor_id})
    body = {"visitor_id": visitor_id, "order_id": "o-9"}
    first = api.post("/v1/offers/delay-apology/redeem", json=body, headers=SECRET)
    again = api.post("/v1/offers/delay-apology/redeem", json=body, headers=SECRET)
    assert (first.json()["status"], again.json()["status"]) == ("redeemed", "duplicate")
    other = api.post("/v1/offers/delay-apology/redeem", json={**body, "order_id": "o-10"},
                     headers=SECRET)  # fmt: skip
    assert other.status_code == 409
    assert "delay-apology" not in offers(api, visitor_id)


def test_a_broken_campaigns_file_is_refused_and_the_last_good_one_stays(
    api: TestClient, campaigns_file: Path, visitor_id: str
) -> None:
    send(api, {"type": "shipment_delayed", "visitor_id": visitor_id})
    good = campaigns_file.read_text()
    broken = good.replace("rule: {lifetime_value: {gt: 800}}", "rule: {lifetime_valu: {gt: 800}}")
    campaigns_file.write_text(broken)
    store = api.app.state.campaigns  # type: ignore[attr-defined]
    store.loaded_mtime = None  # do not wait for the poll
    assert store.reload_if_changed() is False
    status = api.get("/v1/campaigns", headers=SECRET).json()
    assert "line 12" in status["last_error"] and "lifetime_valu" in status["last_error"]
    assert "delay-apology" in offers(api, visitor_id)  # the previous file is still in force
    shutil.copy(campaigns_file, campaigns_file.with_suffix(".bak"))
    campaigns_file.write_text(good.replace("Sorry for the wait", "Sorry for the delay"))
    store.loaded_mtime = None
    assert store.reload_if_changed() is True
    assert api.get("/v1/campaigns", headers=SECRET).json()["last_error"] is None
    assert offers(api, visitor_id)["delay-apology"]["title"].startswith("Sorry for the delay")


def test_a_broken_file_at_start_stops_the_server_with_the_reason(
    campaign_settings: Settings, campaigns_file: Path
) -> None:
    campaigns_file.write_text("offers:\n  - id: x\n    kind: teleport\n")
    app = create_app(campaign_settings)
    with pytest.raises(Exception, match=r"line 3.*offers\.0\.kind"), TestClient(app):
        pass


def test_an_offer_cannot_be_redeemed_again_once_it_is_no_longer_offered(
    api: TestClient, visitor_id: str
) -> None:
    send(api, purchase(visitor_id, 60, "o1"), purchase(visitor_id, 60, "o2"))  # 240 points
    reward = offers(api, visitor_id)["loyalty-reward"]
    first = {"visitor_id": visitor_id, "order_id": f"{visitor_id}-o3", "order_value": 40,
             "code": reward["code"]}  # fmt: skip
    done = api.post("/v1/offers/loyalty-reward/redeem", json=first, headers=SECRET)
    assert done.status_code == 200, done.text
    assert profile(api, visitor_id)["loyalty"]["points"] == 40
    again = {"visitor_id": visitor_id, "order_id": f"{visitor_id}-o4", "order_value": 40}
    refused = api.post("/v1/offers/loyalty-reward/redeem", json=again, headers=SECRET)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_eligible"
    retry = api.post("/v1/offers/loyalty-reward/redeem", json=first, headers=SECRET)
    assert retry.json()["status"] == "duplicate"
    assert profile(api, visitor_id)["loyalty"]["points"] == 40


def test_redemptions_follow_a_visitor_into_its_customer(api: TestClient, visitor_id: str) -> None:
    send(api, {"type": "shipment_delayed", "visitor_id": visitor_id})
    body = {"visitor_id": visitor_id, "order_id": f"{visitor_id}-anon"}
    assert api.post("/v1/offers/delay-apology/redeem", json=body, headers=SECRET).status_code == 200
    send(api, {"type": "signup", "visitor_id": visitor_id, "customer_id": f"c-{visitor_id}"})
    assert "delay-apology" not in offers(api, visitor_id)
    again = {"visitor_id": visitor_id, "order_id": f"{visitor_id}-known"}
    assert (
        api.post("/v1/offers/delay-apology/redeem", json=again, headers=SECRET).status_code == 409
    )


def test_a_referee_counts_once_and_nobody_refers_themselves(
    api: TestClient, visitor_id: str
) -> None:
    referrer = f"c-{visitor_id}"
    send(api, {"type": "signup", "visitor_id": visitor_id, "customer_id": referrer})
    friend = {"type": "signup", "visitor_id": f"{visitor_id}-friend",
              "properties": {"referred_by": referrer}}  # fmt: skip
    send(api, friend, friend, friend)
    send(api, {"type": "signup", "visitor_id": visitor_id, "customer_id": referrer,
               "properties": {"referred_by": referrer}})  # fmt: skip
    assert profile(api, visitor_id)["referrals"] == 1


def test_purchases_without_ids_in_one_batch_stay_separate_orders(
    api: TestClient, visitor_id: str
) -> None:
    line = [{"item_id": "i000001", "price": 20.0}]
    send(api, *[{"type": "purchase", "visitor_id": visitor_id, "items": line}] * 2)
    assert (profile(api, visitor_id)["orders"], profile(api, visitor_id)["lifetime_value"]) == (
        2,
        40.0,
    )


def test_a_minimum_order_value_needs_the_order_value_and_rewards_need_a_repeat_order(
    api: TestClient, visitor_id: str
) -> None:
    send(api, purchase(visitor_id, 60, "first"))  # 120 points, one order
    no_value = {"visitor_id": visitor_id, "order_id": "first"}
    response = api.post("/v1/offers/loyalty-reward/redeem", json=no_value, headers=SECRET)
    assert response.status_code == 422
    on_first = {**no_value, "order_value": 60}
    response = api.post("/v1/offers/loyalty-reward/redeem", json=on_first, headers=SECRET)
    assert response.json()["error"]["code"] == "not_a_repeat_order"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ("rule: {lifetime_value: {gt: 800}}", "rule: {[lifetime_value]: {gt: 800}}"),
        ("valid_until: 2027-12-31T23:59:00Z", "valid_until: 2027-12-31 23:59:00"),
        ('template: "Fresh arrivals in every category"', 'template: "{cart_value:d} in cart"'),
        ('template: "Fresh arrivals in every category"', 'template: "{amount_to_free_shipping}"'),
    ],
)
def test_odd_edits_are_refused_or_work_and_reloading_goes_on(
    api: TestClient, campaigns_file: Path, visitor_id: str, edit: str, problem: str
) -> None:
    good = campaigns_file.read_text()
    assert edit in good
    campaigns_file.write_text(good.replace(edit, problem))
    store = api.app.state.campaigns  # type: ignore[attr-defined]
    store.loaded_mtime = None
    store.reload_if_changed()  # refused, or accepted if the edit is harmless; never raises
    for slot in ("home_hero", "cart_banner"):
        response = api.get("/v1/content", params={"visitor_id": visitor_id, "slot": slot},
                           headers=PUBLIC)  # fmt: skip
        assert response.status_code == 200
    campaigns_file.write_text(good.replace("Sorry for the wait", "Sorry, still reloading"))
    store.loaded_mtime = None
    assert store.reload_if_changed() is True


def test_a_second_delayed_parcel_earns_a_second_apology(api: TestClient, visitor_id: str) -> None:
    earlier = (datetime.now(UTC) - timedelta(hours=5)).isoformat()
    send(api, {"type": "shipment_delayed", "visitor_id": visitor_id, "timestamp": earlier})
    body = {"visitor_id": visitor_id, "order_id": f"{visitor_id}-a"}
    assert api.post("/v1/offers/delay-apology/redeem", json=body, headers=SECRET).status_code == 200
    assert "delay-apology" not in offers(api, visitor_id)
    send(api, {"type": "shipment_delayed", "visitor_id": visitor_id})
    assert "delay-apology" in offers(api, visitor_id)
    body = {"visitor_id": visitor_id, "order_id": f"{visitor_id}-b"}
    assert api.post("/v1/offers/delay-apology/redeem", json=body, headers=SECRET).status_code == 200

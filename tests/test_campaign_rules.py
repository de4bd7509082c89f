"""The pure campaign rules, without Redis or HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from campaigns.config import DEFAULT_LOYALTY, Campaigns, Offer, parse_campaigns
from campaigns.facts import RECENT_FACTS, compute_facts
from campaigns.loyalty import loyalty_status
from campaigns.offers import Context, eligible_offers, offer_code
from campaigns.person import Order, PersonRecord
from campaigns.rules import RuleError, check_rule, facts_named, matches
from campaigns.segments import facts_read, refresh_reads_recent, segments_of
from models.history import Interaction

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
DAY = 86_400.0


def no_events(_: str, __: int) -> int:
    return 0


def test_rules_combine_and_unknown_facts_never_match() -> None:
    rule = {"all": [{"orders": {"gte": 2}}, {"not": {"email_opt_in": {"eq": False}}}]}
    check_rule(rule, "rule", set())
    assert matches(rule, {"orders": 3, "email_opt_in": True}, no_events, lambda _: False)
    assert not matches(rule, {"orders": 1, "email_opt_in": True}, no_events, lambda _: False)
    assert not matches({"churn_risk": {"gt": 0.5}}, {"churn_risk": None}, no_events, bool)
    assert matches({"any": [{"categories_bought": {"contains": "tea"}}]},
                   {"categories_bought": ["tea"]}, no_events, bool)  # fmt: skip
    window = {"events": {"type": "view", "days": 7, "gte": 3}}
    check_rule(window, "rule", set())
    assert matches(window, {}, lambda kind, days: 3 if (kind, days) == ("view", 7) else 0, bool)


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ({"ltv": {"gt": 1}}, "rule.ltv"),
        ({"orders": {"greater": 1}}, "rule.orders.greater"),
        ({"all": []}, "rule.all"),
        ({"all": [{"orders": {"gt": 1}}, {"segment": "ghost"}]}, "rule.all[1].segment"),
        ({"events": {"type": "view", "days": 400, "gte": 1}}, "rule.events.days"),
        ({"events": {"type": "teleport", "days": 3, "gte": 1}}, "rule.events.type"),
        ({"orders": {"gt": 1}, "ltv": {"gt": 2}}, "rule"),
    ],
)
def test_rule_mistakes_name_their_place(rule: dict[str, object], where: str) -> None:
    with pytest.raises(RuleError) as caught:
        check_rule(rule, "rule", set())
    assert caught.value.path == where


def test_segments_may_refer_to_each_other_but_a_cycle_matches_nothing() -> None:
    campaigns = parse_campaigns(
        """
segments:
  big: {rule: {lifetime_value: {gt: 100}}}
  big_repeat: {rule: {all: [{segment: big}, {orders: {gte: 2}}]}}
  loop_a: {rule: {segment: loop_b}}
  loop_b: {rule: {segment: loop_a}}
"""
    )
    record = PersonRecord("c:x")
    facts = {"lifetime_value": 150, "orders": 2}
    assert segments_of(campaigns, facts, record, NOW.timestamp()) == ["big", "big_repeat"]


def test_the_facts_a_campaigns_segments_compare_are_found_at_any_depth() -> None:
    rule = {"all": [{"orders": {"gte": 2}}, {"any": [{"not": {"categories_viewed": {
        "contains": "tea"}}}, {"events": {"type": "view", "days": 7, "gte": 3}}]}]}  # fmt: skip
    assert facts_named(rule) == {"orders", "categories_viewed", "events"}
    campaigns = parse_campaigns(
        """
segments:
  big: {rule: {lifetime_value: {gt: 100}}}
  big_repeat: {rule: {all: [{segment: big}, {orders: {gte: 2}}]}}
"""
    )
    assert facts_read(campaigns) == {"lifetime_value", "segment", "orders"}
    assert facts_read(Campaigns()) == set()


def test_a_refresh_reads_recent_lists_only_for_rules_on_viewed_categories() -> None:
    example = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"
    assert not refresh_reads_recent(parse_campaigns(example.read_text()))
    nested = parse_campaigns(
        """
segments:
  tea_browsers: {rule: {categories_viewed: {contains: tea}}}
  keen: {rule: {all: [{segment: tea_browsers}, {orders: {gte: 1}}]}}
"""
    )
    assert refresh_reads_recent(nested)


def test_only_the_recent_facts_come_from_the_recent_list() -> None:
    """A segment refresh skips reading the list when no rule compares a RECENT_FACT: every
    other fact must come out the same without it."""
    catalog = {"i1": {"category": "tea", "price": 4.0}, "i2": {"category": "cups", "price": 9.0}}
    at = NOW.timestamp()
    record = PersonRecord(
        "c:x",
        profile={"first_seen": str(at - 40 * DAY), "last_seen": str(at), "email_opt_in": "1"},
        orders=[Order("o1", 120.0, at - DAY)],
        cart={"i2": 1},
        wishlist=["i1"],
        purchased=["i1"],
        recent=[Interaction("i2", "view", at), Interaction("i1", "add_to_cart", at)],
        counts={"view:20619": 1},
    )
    unread = PersonRecord(**{**record.__dict__, "recent": None})
    full = compute_facts(record, catalog.get, DEFAULT_LOYALTY, 0, at)
    partial = compute_facts(unread, catalog.get, DEFAULT_LOYALTY, 0, at)
    differing = {name for name in full if full[name] != partial[name]}
    assert differing == RECENT_FACTS
    assert full["categories_viewed"] == ["cups"] and partial["categories_viewed"] is None


def test_points_follow_the_tier_held_when_ordering_and_skip_returns() -> None:
    t = NOW.timestamp()
    orders = [
        Order("a", 400, t - 30 * DAY),
        Order("b", 450, t - 20 * DAY),
        Order("c", 100, t - 10 * DAY),
        Order("d", 999, t - 5 * DAY, returned=True),
    ]
    status = loyalty_status(orders, points_spent=0, loyalty=DEFAULT_LOYALTY, now=t)
    # 400 at base (2/$), 450 at middle (spend 400 >= 300: 4/$), 100 at top (850: 6/$)
    assert status.earned == 400 * 2 + 450 * 4 + 100 * 6
    assert (status.tier, status.spend_12m) == ("top", 950.0)
    old = loyalty_status([Order("a", 900, t - 400 * DAY)], 0, DEFAULT_LOYALTY, t)
    assert old.tier == "base"  # spend older than twelve months does not hold a tier


def context(campaigns: Campaigns, record: PersonRecord, now: datetime) -> Context:
    facts = compute_facts(record, lambda _: None, campaigns.loyalty, 0, now.timestamp())
    return Context(campaigns, record, facts, frozenset(), lambda _: None, now)


def test_the_birthday_offer_is_gone_the_day_after() -> None:
    campaigns = parse_campaigns(
        "offers: [{id: bday, kind: birthday, title: B, discount_type: percentage,"
        " discount_value: 35, valid_hours: 24}]"
    )
    record = PersonRecord("c:x", profile={"birthday": "1990-06-15"})
    on_the_day = eligible_offers(context(campaigns, record, NOW), {}, {})
    assert [e.offer.id for e in on_the_day] == ["bday"]
    assert on_the_day[0].expires_at == datetime(2026, 6, 16, tzinfo=UTC)
    assert eligible_offers(context(campaigns, record, NOW + timedelta(days=1)), {}, {}) == []


def test_scarcity_is_announced_late_and_budgets_close_offers() -> None:
    until = NOW + timedelta(hours=10)
    offer = Offer(id="flash", kind="scarcity", title="F", discount_type="percentage",  # type: ignore[arg-type]
                  discount_value=50, min_order_value=30, valid_until=until, announce_hours=6,
                  budget=3)  # fmt: skip
    campaigns = Campaigns(offers=[offer])
    record = PersonRecord("c:x")
    assert eligible_offers(context(campaigns, record, NOW), {}, {}) == []
    later = NOW + timedelta(hours=5)
    assert [
        e.min_order_value for e in eligible_offers(context(campaigns, record, later), {}, {})
    ] == [30]
    assert eligible_offers(context(campaigns, record, later), {}, {"flash": 3}) == []
    assert eligible_offers(context(campaigns, record, until), {}, {}) == []


def test_codes_are_unique_per_person_offer_and_item_and_stable() -> None:
    codes = {
        offer_code("s", p, o, i) for p in ("c:a", "c:b") for o in ("x", "y") for i in (None, "i1")
    }
    assert len(codes) == 8
    assert offer_code("s", "c:a", "x") == offer_code("s", "c:a", "x")
    assert offer_code("s", "c:a", "x") != offer_code("other", "c:a", "x")


def test_the_example_file_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"
    campaigns = parse_campaigns(example.read_text())
    kinds = {offer.kind.value for offer in campaigns.offers}
    assert len(kinds) == 10
    assert {"high_ltv", "low_spenders", "new", "repeat", "lapsed", "cart_abandoners",
            "at_risk"} <= set(campaigns.segments)  # fmt: skip


def test_a_birthday_coupon_used_this_year_comes_back_next_year() -> None:
    campaigns = parse_campaigns(
        "offers: [{id: bday, kind: birthday, title: B, discount_type: percentage,"
        " discount_value: 35}]"
    )
    record = PersonRecord("c:x", profile={"birthday": "1990-06-15"})
    used_this_year = {"bday": ("2026", 1)}
    assert eligible_offers(context(campaigns, record, NOW), {"bday": 1}, {}, used_this_year) == []
    next_year = NOW.replace(year=2027)
    again = eligible_offers(context(campaigns, record, next_year), {"bday": 1}, {}, used_this_year)
    assert [(e.offer.id, e.period) for e in again] == [("bday", "2027")]

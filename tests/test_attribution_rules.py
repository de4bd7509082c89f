"""Attribution rules and the monthly retention rate, as pure functions."""

from __future__ import annotations

import pytest

from campaigns.attribution import (
    MESSAGE,
    REC_CLICK,
    AttributionWindows,
    Credit,
    OrderLine,
    RecommendationTag,
    Touch,
    attribute,
    line_revenues,
    new_recommendation_id,
    parse_recommendation_id,
)
from campaigns.retention import month_report, retention_rate, shift_month, windows_for

HOUR = 3600.0
WINDOWS = AttributionWindows(click_window_hours=24, message_window_hours=72)
HOME = new_recommendation_id(RecommendationTag("home", "v1", "exp", "personal"))
CART = new_recommendation_id(RecommendationTag("cart", "v1"))


def test_a_recommendation_id_carries_its_tag_and_refuses_forgeries() -> None:
    assert parse_recommendation_id(HOME) == RecommendationTag("home", "v1", "exp", "personal")
    assert parse_recommendation_id(CART) == RecommendationTag("cart", "v1")
    for forged in ("abc", "n.attic.v1.-.-", "n.home.v1.exp.-", "n.home.v 1.-.-", "n.home.v1.A.b"):
        assert parse_recommendation_id(forged) is None


def test_a_clicked_line_bought_within_the_window_earns_its_revenue() -> None:
    lines = [OrderLine("a", 30.0), OrderLine("b", 70.0)]
    touches = [Touch(REC_CLICK, HOME, "a", 1000.0), Touch(REC_CLICK, CART, "b", 1000.0 - 30 * HOUR)]
    credits = attribute(lines, 1000.0 + 23 * HOUR, touches, WINDOWS)
    # b's click is 53 hours before the order: outside the 24-hour window.
    assert credits == [
        Credit("placement", "home", 30.0),
        Credit("model", "v1", 30.0),
        Credit("variant", "exp/personal", 30.0),
    ]
    assert attribute(lines, 1000.0 + 25 * HOUR, touches, WINDOWS) == []


def test_the_latest_click_on_an_item_wins_and_later_clicks_never_count() -> None:
    lines = [OrderLine("a", 50.0)]
    touches = [
        Touch(REC_CLICK, HOME, "a", 100.0),
        Touch(REC_CLICK, CART, "a", 200.0),
        Touch(REC_CLICK, HOME, "a", 400.0),  # after the order
    ]
    credits = attribute(lines, 300.0, touches, WINDOWS)
    assert Credit("placement", "cart", 50.0) in credits
    assert all(credit.key != "home" for credit in credits)


def test_messages_and_offers_earn_the_whole_order_last_touch() -> None:
    lines = [OrderLine("a", 40.0), OrderLine("b", 60.0)]
    touches = [
        Touch(MESSAGE, "win_back", "", 1000.0 - 80 * HOUR),  # outside 72 hours
        Touch(MESSAGE, "cart_abandonment", "", 1000.0 - 5 * HOUR),
        Touch(MESSAGE, "browse_abandonment", "", 1000.0 - 10 * HOUR),
    ]
    credits = attribute(lines, 1000.0, touches, WINDOWS, offer_id="welcome10")
    assert credits == [
        Credit("journey", "cart_abandonment", 100.0),
        Credit("offer", "welcome10", 100.0),
    ]


def test_line_revenues_split_the_order_value() -> None:
    assert line_revenues([("a", 10.0), ("b", 30.0)], 20.0) == [
        OrderLine("a", 5.0),
        OrderLine("b", 15.0),
    ]
    assert line_revenues([("a", 0.0), ("b", 0.0)], 20.0) == [
        OrderLine("a", 10.0),
        OrderLine("b", 10.0),
    ]


def test_retention_rate_follows_the_brief() -> None:
    # B = 200 at the start, E = 210 at the end, N = 30 new: CRR = (210 - 30) / 200 = 90%.
    assert retention_rate(200, 210, 30) == pytest.approx(90.0)
    assert retention_rate(0, 5, 5) is None
    report = month_report("2026-03", 200, 210, 30, buyers=80, orders=100, revenue=5000.0)
    assert report.repeat_purchase_rate == pytest.approx(50 / 80)
    assert report.average_order_value == pytest.approx(50.0)


def test_month_windows() -> None:
    assert shift_month("2026-01", -1) == "2025-12"
    assert shift_month("2025-12", 13) == "2027-01"
    windows = windows_for("2026-03", active_months=3)
    assert windows.start == ["2025-12", "2026-01", "2026-02"]
    assert windows.end == ["2026-01", "2026-02", "2026-03"]

"""End to end in a real headless Chromium: the demo storefront and the dashboard.

The live app is served by uvicorn on a loopback port; the browser is Debian's chromium
driven by Playwright (no browser download). Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from server.app import create_app
from server.inprocess import serving
from settings import Settings
from state import keys, logged_events
from tests.conftest import SECRET_KEY
from training.backfill import load_history

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path("var/screenshots")
CAMPAIGNS = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"
# Without the networking flags Chromium keeps dialling Google from a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 10_000
DATABASE = 6


@pytest.fixture(scope="module")
def live_server(valkey: str, trained_models: Path, store_dir: Path) -> Iterator[str]:
    """The app on a private database holding the generated store's whole history, so
    the dashboard has months of orders, segments and a model to show."""
    url = f"{valkey}/{DATABASE}"
    redis.Redis.from_url(url).flushdb()
    settings = Settings(
        redis_url=url,
        models_dir=trained_models,
        public_api_keys=["pk_browser"],
        secret_api_keys=[SECRET_KEY],
        campaigns_file=CAMPAIGNS,
        storefront_demo=True,
    )
    load_history(settings, store_dir / "events.jsonl.gz", store_dir / "catalog.jsonl.gz")
    with serving(create_app(settings)) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def stored_event(redis_client: redis.Redis, **wanted: Any) -> dict[str, Any] | None:
    """The newest event in the behaviour stream with these fields, if any."""
    entries: list[tuple[str, dict[str, str]]] = redis_client.xrevrange(  # type: ignore[assignment]
        keys.EVENTS_STREAM, count=200
    )
    for _, fields in entries:
        event = logged_events.decode(fields).row
        if all(event.get(name) == value for name, value in wanted.items()):
            return event
    return None


def wait_for_event(redis_client: redis.Redis, **wanted: Any) -> dict[str, Any]:
    """Beacons are delivered after the click navigates away: poll the stream for it."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while (event := stored_event(redis_client, **wanted)) is None:
        assert time.monotonic() < deadline, f"no event {wanted} reached the stream"
        time.sleep(0.05)
    return event


@pytest.fixture
def live_redis(valkey: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(f"{valkey}/{DATABASE}", decode_responses=True)
    yield connection
    connection.close()


def test_the_storefront_carousel_shows_live_items_and_reports_the_click(
    live_server: str, page: Page, live_redis: redis.Redis
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{live_server}/demo")
    carousel = page.locator("section.encore[data-recommendation-id]")
    carousel.wait_for(timeout=WAIT_MS)
    recommendation_id = carousel.get_attribute("data-recommendation-id")
    assert recommendation_id
    shown = page.locator(".encore-card").evaluate_all(
        "cards => cards.map(card => card.dataset.itemId)"
    )
    visitor = page.evaluate("window.encore.visitorId()")
    assert len(shown) == 8
    # What the carousel shows is what the live server answers for this visitor.
    answer = httpx.get(
        f"{live_server}/v1/recommendations",
        params={"visitor_id": visitor, "limit": 8},
        headers={"X-API-Key": "pk_browser"},
    ).json()
    assert [item["item_id"] for item in answer["items"]] == shown
    assert page.get_by_role("region", name="Recommended for you").is_visible()
    assert page.get_by_role("button", name="Next products").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "storefront-home.png"), full_page=True)
    impression = wait_for_event(
        live_redis, type="rec_impression", recommendation_id=recommendation_id
    )
    assert impression["visitor_id"] == visitor

    page.locator(".encore-card a").first.click()
    page.wait_for_url(f"**/demo?item={shown[0]}")
    click = wait_for_event(live_redis, type="rec_click", recommendation_id=recommendation_id)
    assert click["item_id"] == shown[0]
    assert click["visitor_id"] == visitor
    # The product page reports the view and shows its own carousel.
    wait_for_event(live_redis, type="view", item_id=shown[0], visitor_id=visitor)
    page.locator("section.encore").wait_for(timeout=WAIT_MS)
    page.screenshot(path=str(SCREENSHOTS / "storefront-product.png"), full_page=True)


def test_the_dashboard_draws_its_charts_without_console_errors(
    live_server: str, page: Page
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    page.on("console", lambda m: _note_error(problems, m))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(f"{live_server}/dashboard#key={SECRET_KEY}")
    page.locator("body[data-loaded=true]").wait_for(timeout=WAIT_MS)
    for chart in ("crr-chart", "repeat-chart", "aov-chart", "segments-chart", "ltv-chart",
                  "ctr-chart", "revenue-chart", "experiment-home_personalisation"):  # fmt: skip
        assert page.locator(f"#{chart} svg").count() == 1, chart
    # The generated store's year of orders: retention bars, segment and LTV bars.
    for chart in ("crr-chart", "aov-chart", "segments-chart", "ltv-chart"):
        assert page.locator(f"#{chart} svg rect").count() >= 3, chart
    assert "home_personalisation" in page.locator("#experiments").inner_text()
    # The live rate needs two polls; the second comes two seconds after the first.
    page.locator("#rate-chart polyline").wait_for(state="attached", timeout=WAIT_MS)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    assert problems == []


def _note_error(problems: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.append(f"console: {message.text}")

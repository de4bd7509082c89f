"""Triggered journeys: scheduled from the stream, fired by the clock, emitted once."""

from __future__ import annotations

import asyncio
import calendar
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from campaigns.config import Campaigns
from campaigns.journeys import JourneySettings, Step
from models.events import Event
from server.campaign_store import CampaignStore
from server.worker import JourneyWorker
from settings import Settings
from state import keys
from state.connection import open_client
from state.ingest import EventStore
from state.sweep import PeopleWalk
from tests.conftest import own_redis

START = datetime.now(UTC) - timedelta(days=30)
MINUTE = 60.0
DAY = 86_400.0


@pytest.fixture
def redis_url(tmp_path: Any) -> Any:
    """A Valkey of its own: journeys read the whole stream and the whole outbox."""
    with own_redis(tmp_path / "valkey") as url:
        yield url


def at(offset_seconds: float) -> str:
    return (START + timedelta(seconds=offset_seconds)).isoformat()


class Harness:
    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> Harness:
        self.redis = await open_client(self.url)
        self.store = EventStore(self.redis, Settings())
        self.campaigns = CampaignStore(None, 60)
        # These tests exercise timing and caps; consent has tests of its own below.
        self.campaigns.current = Campaigns(journeys=JourneySettings(consent="opt_out"))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.redis.aclose()

    def worker(self, name: str = "w1") -> JourneyWorker:
        return JourneyWorker(self.redis, self.campaigns, name)

    async def send(self, **fields: Any) -> None:
        await self.store.ingest([Event.model_validate(fields)])

    async def outbox(self) -> list[dict[str, str]]:
        entries: Any = await self.redis.xrange(keys.OUTBOX_STREAM)
        return [fields for _, fields in entries]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_an_abandoned_cart_is_chased_once_after_the_delay(redis_url: str) -> None:
    async def scenario() -> list[list[tuple[str, str]]]:
        async with Harness(redis_url) as h:
            worker = h.worker()
            await worker.ensure_group()
            visitor = f"cart-{uuid.uuid4().hex[:6]}"
            await h.send(type="add_to_cart", visitor_id=visitor, item_id="i1", timestamp=at(0))
            await worker.process_events()
            seen = []
            for minutes in (30, 59, 61, 120, 600):
                await worker.fire_due(START.timestamp() + minutes * MINUTE)
                seen.append([(m["journey"], m["step"]) for m in await h.outbox()])
            return seen

    seen = run(scenario())
    assert seen[:2] == [[], []]
    assert seen[2] == seen[3] == seen[4] == [("cart_abandonment", "reminder")]


def test_a_purchase_before_the_delay_cancels_the_cart_reminder(redis_url: str) -> None:
    async def scenario() -> list[dict[str, str]]:
        async with Harness(redis_url) as h:
            worker = h.worker()
            await worker.ensure_group()
            visitor = f"buyer-{uuid.uuid4().hex[:6]}"
            await h.send(type="add_to_cart", visitor_id=visitor, item_id="i1", timestamp=at(0))
            await worker.process_events()
            await h.send(type="purchase", visitor_id=visitor, order_id="o1", value=20,
                         items=[{"item_id": "i1"}], timestamp=at(10 * MINUTE))  # fmt: skip
            await worker.process_events()
            await worker.fire_due(START.timestamp() + 2 * 3600)
            return await h.outbox()

    assert [m["journey"] for m in run(scenario())] == ["referral_invitation"]  # no cart reminder


def test_post_purchase_fires_two_steps_in_order_and_stops_on_a_new_order(
    redis_url: str,
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async with Harness(redis_url) as h:
            worker = h.worker()
            await worker.ensure_group()
            loyal, again = f"loyal-{uuid.uuid4().hex[:6]}", f"again-{uuid.uuid4().hex[:6]}"
            for visitor in (loyal, again):
                await h.send(type="purchase", visitor_id=visitor, order_id=f"{visitor}-1",
                             value=30, items=[{"item_id": "i1"}], timestamp=at(0))  # fmt: skip
            await h.send(type="purchase", visitor_id=again, order_id=f"{again}-2", value=30,
                         items=[{"item_id": "i2"}], timestamp=at(8 * DAY))  # fmt: skip
            await worker.process_events()
            start = START.timestamp()
            for day in (6, 7.5, 9, 10.5, 15.5, 18.5):
                await worker.fire_due(start + day * DAY)
            sent = await h.outbox()

            def steps(visitor: str) -> list[str]:
                return [
                    m["step"]
                    for m in sent
                    if m["recipient"].endswith(visitor) and m["journey"] == "post_purchase"
                ]

            return steps(loyal), steps(again)

    loyal, again = run(scenario())
    assert loyal == ["recommendations", "reviews"]
    # The first order's review nudge is dropped (they bought again on day 8); the second
    # order runs its own journey to the end.
    assert again == ["recommendations", "recommendations", "reviews"]


def test_a_delayed_shipment_sends_the_apology_at_once(redis_url: str) -> None:
    async def scenario() -> list[dict[str, str]]:
        async with Harness(redis_url) as h:
            h.campaigns.current = h.campaigns.current.model_copy(
                update={
                    "journeys": JourneySettings(
                        offers={"shipment_delayed": "delay-apology"}, consent="opt_out"
                    )
                }
            )
            worker = h.worker()
            await worker.ensure_group()
            await h.send(type="shipment_delayed", visitor_id="late-1", timestamp=at(0))
            await worker.process_events()
            await worker.fire_due(START.timestamp())
            return await h.outbox()

    sent = run(scenario())
    assert [(m["journey"], m["step"], m["offer_id"]) for m in sent] == [
        ("shipment_delayed", "apology", "delay-apology")
    ]
    assert len(sent[0]["message_id"]) == 32


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(redis_url: str) -> None:
    class Killed(Exception):
        pass

    async def scenario() -> list[str]:
        async with Harness(redis_url) as h:
            doomed_redis = await open_client(redis_url)
            doomed = JourneyWorker(doomed_redis, h.campaigns, "doomed")
            await doomed.ensure_group()
            for n in range(20):
                await h.send(type="shipment_delayed", visitor_id=f"crash-{n}", timestamp=at(n))
            acknowledged = 0
            real_xack = doomed_redis.xack

            async def dies_after_ten(*args: Any) -> Any:
                nonlocal acknowledged
                if acknowledged == 10:
                    raise Killed
                acknowledged += 1
                return await real_xack(*args)

            doomed_redis.xack = dies_after_ten  # type: ignore[method-assign,assignment]
            with pytest.raises(Killed):
                await doomed.process_events()  # schedules 11, acknowledges 10, dies
            await doomed.fire_due(START.timestamp() + 5)  # and had emitted a few
            await doomed_redis.aclose()
            emitted_before = len(await h.outbox())
            survivor = h.worker("survivor")
            await survivor.process_events(claim_idle_ms=0)  # claims the dead one's entries
            await survivor.fire_due(START.timestamp() + 60)
            await survivor.process_events(claim_idle_ms=0)  # nothing left to replay
            await survivor.fire_due(START.timestamp() + 120)
            pending = await h.redis.xpending(keys.EVENTS_STREAM, keys.JOURNEY_GROUP)
            assert pending["pending"] == 0
            assert 0 < emitted_before < 20
            return [m["recipient"] for m in await h.outbox()]

    recipients = run(scenario())
    assert sorted(recipients) == sorted(f"v:crash-{n}" for n in range(20))


def test_a_step_overdue_past_the_lateness_limit_is_dropped(redis_url: str) -> None:
    async def scenario() -> list[dict[str, str]]:
        async with Harness(redis_url) as h:
            worker = h.worker()
            await worker.ensure_group()
            await h.send(type="add_to_cart", visitor_id="stale", item_id="i1", timestamp=at(0))
            await worker.process_events()
            await worker.fire_due(START.timestamp() + 3 * DAY)  # the worker was down for days
            return await h.outbox()

    assert run(scenario()) == []


def test_history_from_before_the_first_worker_triggers_nothing(redis_url: str) -> None:
    async def scenario() -> list[dict[str, str]]:
        async with Harness(redis_url) as h:
            await h.send(type="shipment_delayed", visitor_id="backfilled", timestamp=at(0))
            worker = h.worker()
            await worker.ensure_group()
            await worker.process_events()
            await worker.fire_due(START.timestamp() + 60)
            return await h.outbox()

    assert run(scenario()) == []


def test_messages_carry_products_from_the_served_model(
    redis_url: str, trained_models: Any, bundle: Any
) -> None:
    from server.engine import Engine
    from server.recommending import RecommendationService

    async def scenario() -> list[dict[str, str]]:
        async with Harness(redis_url) as h:
            engine = Engine(h.redis, trained_models, 60)
            await engine.start()
            recommend = RecommendationService(h.redis, engine, h.campaigns).answer
            worker = JourneyWorker(h.redis, h.campaigns, "w1", recommend)
            await worker.ensure_group()
            await h.send(type="shipment_delayed", visitor_id="late-with-model", timestamp=at(0))
            await worker.process_events()
            await worker.fire_due(START.timestamp())
            await engine.stop()
            return await h.outbox()

    (message,) = run(scenario())
    products = orjson.loads(message["products"])
    assert len(products) == 4 and all(p in bundle.index_of for p in products)


def journeys_sent(
    redis_url: str, events: list[dict[str, Any]], fire_at: list[float], **settings: Any
) -> list[dict[str, str]]:
    """Send the events (for visitors of their own), fire at each offset (seconds after
    START), and return the messages this run added to the outbox."""
    run_id = uuid.uuid4().hex[:6]

    async def scenario() -> list[dict[str, str]]:
        async with Harness(redis_url) as h:
            before = len(await h.outbox())
            journeys = JourneySettings(**{"consent": "opt_out", **settings})
            h.campaigns.current = h.campaigns.current.model_copy(update={"journeys": journeys})
            categories = {"i1": "tea", "i2": "tea", "i3": "tea", "i9": "pots"}
            worker = JourneyWorker(h.redis, h.campaigns, "w1", None,
                                   lambda i: {"category": categories.get(i)})  # fmt: skip
            await worker.ensure_group()
            for event in events:
                own: dict[str, Any] = dict(event)
                for name in ("visitor_id", "customer_id"):
                    if name in own:
                        own[name] = f"{own[name]}-{run_id}"
                await h.send(**own)
            await worker.process_events()
            for offset in fire_at:
                await worker.fire_due(START.timestamp() + offset)
            added = (await h.outbox())[before:]
            return [m for m in added if m["recipient"].endswith(run_id)]

    return run(scenario())


def test_browse_abandonment_needs_enough_views_in_one_category_and_no_cart(
    redis_url: str,
) -> None:
    browsing = [{"type": "view", "visitor_id": "browser", "item_id": f"i{n}", "category": "tea",
                 "timestamp": at(n * MINUTE)} for n in (1, 2, 3)]  # fmt: skip
    sent = journeys_sent(redis_url, browsing, [20 * MINUTE, 40 * MINUTE])
    assert [(m["journey"], m["step"]) for m in sent] == [("browse_abandonment", "category_picks")]
    carted = [*browsing, {"type": "add_to_cart", "visitor_id": "browser", "item_id": "i1",
                          "timestamp": at(4 * MINUTE)}]  # fmt: skip
    sent = journeys_sent(redis_url, carted, [40 * MINUTE])
    assert "browse_abandonment" not in [m["journey"] for m in sent]


def test_win_back_after_six_quiet_months_and_a_first_order_referral_invite(
    redis_url: str,
) -> None:
    order = {"type": "purchase", "visitor_id": "once", "order_id": "o1", "value": 20,
             "items": [{"item_id": "i9"}], "timestamp": at(0)}  # fmt: skip
    sent = journeys_sent(redis_url, [order], [0, 181 * DAY], win_back_days=180,
                         max_lateness_hours=24 * 3)  # fmt: skip
    assert [m["journey"] for m in sent] == ["referral_invitation", "win_back"]


def test_wishlist_and_birthday_journeys(redis_url: str) -> None:
    day = (START + timedelta(days=10)).date()
    events: list[dict[str, Any]] = [
        {"type": "wishlist_add", "visitor_id": "fan", "item_id": "i2", "timestamp": at(0)},
        {"type": "signup", "visitor_id": "fan", "customer_id": "c-fan", "timestamp": at(0),
         "properties": {"birthday": f"1990-{day:%m-%d}"}},
    ]  # fmt: skip
    # The coupon comes back every year on the day (29 February: the 28th in other years).
    birthdays = []
    for year in (day.year, day.year + 1, day.year + 2):
        leap_day = (day.month, day.day) == (2, 29) and not calendar.isleap(year)
        moment = datetime(year, day.month, 28 if leap_day else day.day, tzinfo=UTC)
        birthdays.append(moment.timestamp() - START.timestamp())
    sent = journeys_sent(redis_url, events, [25 * 3600] + [b + 60 for b in birthdays])
    assert [m["journey"] for m in sent] == ["wishlist_discount", "birthday", "birthday", "birthday"]
    assert [float(m["due"]) - START.timestamp() for m in sent[1:]] == pytest.approx(birthdays)


def test_a_leap_day_birthday_falls_on_the_28th_in_other_years() -> None:
    from campaigns.journeys import BIRTHDAY, follow_up

    leap = datetime(2028, 2, 29, tzinfo=UTC).timestamp()
    step = Step(BIRTHDAY, "coupon", "c:leap", leap, f"{leap:.0f}")
    following = follow_up(step)
    assert following is not None
    assert datetime.fromtimestamp(following.due, UTC) == datetime(2029, 2, 28, tzinfo=UTC)
    assert follow_up(Step("win_back", "bestsellers", "c:x", leap, "o1")) is None


def test_opted_out_capped_and_quiet_hours(redis_url: str) -> None:
    opted_out: list[dict[str, Any]] = [
        {"type": "signup", "visitor_id": "no-mail", "properties": {"email_opt_in": False},
         "timestamp": at(0)},
        {"type": "add_to_cart", "visitor_id": "no-mail", "item_id": "i1", "timestamp": at(1)},
    ]  # fmt: skip
    assert journeys_sent(redis_url, opted_out, [2 * 3600]) == []

    wishes: list[dict[str, Any]] = [
        {"type": "wishlist_add", "visitor_id": "busy", "item_id": item, "timestamp": at(0)}
        for item in ("i1", "i2", "i3")
    ]
    wishes.append({"type": "shipment_delayed", "visitor_id": "busy", "timestamp": at(25 * 3600)})
    sent = journeys_sent(redis_url, wishes, [25 * 3600], max_messages_per_week=2)
    # Two marketing messages a week at most; the service apology is not marketing.
    assert sorted(m["journey"] for m in sent) == [
        "shipment_delayed", "wishlist_discount", "wishlist_discount"
    ]  # fmt: skip

    start_hour = START.hour
    quiet = ((start_hour + 1) % 24, (start_hour + 5) % 24)  # quiet from one hour after START
    cart = [{"type": "add_to_cart", "visitor_id": "night", "item_id": "i1", "timestamp": at(0)}]
    minutes_past = START.minute * MINUTE + START.second
    during = 2 * 3600 - minutes_past  # well inside the quiet window
    after = 5 * 3600 - minutes_past + 60  # just after it
    sent = journeys_sent(redis_url, cart, [during], quiet_hours_utc=quiet)
    assert sent == []
    sent = journeys_sent(redis_url, cart, [during, after], quiet_hours_utc=quiet)
    assert [m["journey"] for m in sent] == ["cart_abandonment"]


def test_an_opt_out_on_any_event_stops_messages_and_an_opt_in_restores_them(
    redis_url: str,
) -> None:
    events: list[dict[str, Any]] = [
        {"type": "add_to_cart", "visitor_id": "fickle", "item_id": "i1", "timestamp": at(0)},
        {"type": "email_click", "visitor_id": "fickle", "timestamp": at(60),
         "properties": {"email_opt_in": False}},
    ]  # fmt: skip
    assert journeys_sent(redis_url, events, [2 * 3600]) == []
    events.append({"type": "email_open", "visitor_id": "fickle", "timestamp": at(120),
                   "properties": {"email_opt_in": True}})  # fmt: skip
    sent = journeys_sent(redis_url, events, [2 * 3600])
    assert [m["journey"] for m in sent] == ["cart_abandonment"]


def test_a_cancelled_step_read_before_the_purchase_is_not_sent(redis_url: str) -> None:
    async def scenario() -> list[dict[str, str]]:
        async with Harness(redis_url) as h:
            from state.journeys import JourneyStore

            store = JourneyStore(h.redis)
            step = Step("cart_abandonment", "reminder", "v:racer", START.timestamp(), "1.0")
            await store.schedule((step,))
            (due,) = await store.due(START.timestamp() + 10)
            await store.cancel("v:racer", ("cart_abandonment",), START.timestamp() + 5)
            assert not await store.emit(due, {"journey": "cart_abandonment"}, 0.0, 0)
            return await h.outbox()

    assert run(scenario()) == []


# Sweep rounds that cover everyone in these small tests: a round scans part of one
# node (a cluster has three), then the next round goes on where it stopped.
SWEEP_ROUNDS = 6


def test_the_sweep_moves_people_whose_segments_change_with_time_alone(redis_url: str) -> None:
    from pathlib import Path

    from campaigns.config import load_campaigns

    example = Path(__file__).resolve().parent.parent / "campaigns.example.yaml"

    async def scenario() -> tuple[set[str], set[str]]:
        async with Harness(redis_url) as h:
            h.campaigns.current = load_campaigns(example)
            worker = h.worker()
            now = time.time()
            ordered = datetime.fromtimestamp(now - 179 * DAY, UTC).isoformat()
            await h.send(type="purchase", visitor_id="quiet", order_id="o1", value=30,
                         items=[{"item_id": "i1"}], timestamp=ordered)  # fmt: skip
            for _ in range(SWEEP_ROUNDS):
                await worker.sweep_segments(now)
            before = {str(p) for p in await h.redis.smembers(keys.segment_key("lapsed"))}
            for _ in range(SWEEP_ROUNDS):  # no event in between
                await worker.sweep_segments(now + 2 * DAY)
            after = {str(p) for p in await h.redis.smembers(keys.segment_key("lapsed"))}
            return before, after

    before, after = run(scenario())
    assert "v:quiet" not in before and "v:quiet" in after


def test_the_sweep_walks_everyone_with_a_profile_and_no_one_merged_away(redis_url: str) -> None:
    """On a cluster too: each primary is scanned in turn, with a cursor of its own."""

    async def scenario() -> tuple[set[str], set[str]]:
        async with Harness(redis_url) as h:
            anonymous = [f"anon-{n}" for n in range(60)]
            for visitor in anonymous:
                await h.send(type="view", visitor_id=visitor, item_id="i1")
            for n in range(20):  # each browses, then signs in: the visitor folds away
                await h.send(type="view", visitor_id=f"signed-{n}", item_id="i1")
                await h.send(type="signup", visitor_id=f"signed-{n}", customer_id=f"cust-{n}")
            walk = PeopleWalk(h.redis)
            walked: set[str] = set()
            for _ in range(200):  # several passes over every node at 10 people a step
                walked |= set(await walk.next_batch(10))
            expected = {keys.visitor_person(v) for v in anonymous}
            expected |= {keys.customer_person(f"cust-{n}") for n in range(20)}
            return walked, expected

    walked, expected = run(scenario())
    assert walked == expected


def test_marketing_waits_for_an_opt_in_by_default_but_service_messages_do_not(
    redis_url: str,
) -> None:
    silent: list[dict[str, Any]] = [
        {"type": "add_to_cart", "visitor_id": "silent", "item_id": "i1", "timestamp": at(0)},
        {"type": "shipment_delayed", "visitor_id": "silent", "order_id": "o1", "timestamp": at(5)},
    ]  # fmt: skip
    sent = journeys_sent(redis_url, silent, [2 * 3600], consent="opt_in")
    assert [m["journey"] for m in sent] == ["shipment_delayed"]
    willing = [{**silent[0], "properties": {"email_opt_in": True}}]
    sent = journeys_sent(redis_url, willing, [2 * 3600], consent="opt_in")
    assert [m["journey"] for m in sent] == ["cart_abandonment"]

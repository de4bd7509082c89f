"""`python -m server.worker`: turns the behaviour stream into triggered journey messages.

It reads the stream through a consumer group (at-least-once: an entry is acknowledged
only after its steps are scheduled, and a crashed consumer's pending entries are claimed
by another after a while), keeps steps in a sorted set by due time, and emits each due
step once to the outbox, with a stable message id, if its reason still holds.
Scheduling is idempotent and emission is guarded by the message id, so replays after a
crash neither lose nor duplicate a message. The clock is a parameter, so tests drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from campaigns.config import Campaigns
from campaigns.journeys import (
    TRANSACTIONAL,
    WIN_BACK,
    Step,
    consented,
    follow_up,
    plan,
    quiet_until,
    still_wanted,
)
from server.campaign_store import CampaignStore
from server.delivery import WebhookDeliverer
from server.engine import Engine
from server.errors import ApiError
from server.logs import configure_logging
from server.recommending import RecommendationService
from server.schemas import Placement, RecommendationQuery
from settings import Settings, get_settings
from state import keys, logged_events
from state.connection import open_client
from state.groups import ensure_group, take_batch
from state.journeys import JourneyStore
from state.people import ChurnModel, PeopleStore, no_churn_model
from state.sweep import PeopleWalk
from state.visitors import PersonReader, read_record

log = logging.getLogger("server.worker")
CLAIM_IDLE_MS = 60_000  # a consumer silent this long is presumed dead


# Which recommendation placement a journey's products come from.
PLACEMENTS = {
    "cart_abandonment": Placement.CART,
    "post_purchase": Placement.POST_PURCHASE,
    "shipment_delayed": Placement.HOME,
}
MESSAGE_PRODUCTS = 4
Recommend = Callable[[RecommendationQuery], Awaitable[dict[str, Any]]]


class JourneyWorker:
    def __init__(
        self,
        redis: Redis,
        campaigns: CampaignStore,
        consumer: str,
        recommend: Recommend | None = None,
        item: Callable[[str], dict[str, Any] | None] | None = None,
        churn_model: ChurnModel = no_churn_model,
    ) -> None:
        self._redis = redis
        self._campaigns = campaigns
        self._consumer = consumer
        self._recommend = recommend
        self._item = item
        self._journeys = JourneyStore(redis)
        self._reader = PersonReader(redis)
        self._people = PeopleStore(redis, churn_model)
        self._walk = PeopleWalk(redis)

    async def ensure_group(self) -> None:
        """Journeys start with the events that arrive after the first worker does: a
        backfilled history is not a reason to message anyone."""
        await ensure_group(self._redis, keys.EVENTS_STREAM, keys.JOURNEY_GROUP, "$")

    async def process_events(self, count: int = 200, claim_idle_ms: int = CLAIM_IDLE_MS) -> int:
        """Handle a batch: entries abandoned by dead consumers first, then new ones."""
        entries = await take_batch(
            self._redis,
            keys.EVENTS_STREAM,
            keys.JOURNEY_GROUP,
            self._consumer,
            count,
            claim_idle_ms,
        )
        settings = self._campaigns.current.journeys
        for entry_id, fields in entries:
            if fields:  # an entry trimmed from the stream arrives empty
                person, event, ts = logged_events.decode(fields)
                steps = plan(event, person, ts, settings)
                await self._journeys.cancel(person, steps.cancel, ts)
                await self._journeys.schedule(steps.schedule)
            await self._redis.xack(keys.EVENTS_STREAM, keys.JOURNEY_GROUP, entry_id)
        return len(entries)

    async def fire_due(self, now: float) -> int:
        """Emit every step due by `now` whose reason still holds; return how many."""
        emitted = 0
        campaigns = self._campaigns.current
        settings = campaigns.journeys
        too_late = settings.max_lateness_hours * 3600
        quiet = quiet_until(now, settings.quiet_hours_utc)
        for step in await self._journeys.due(now):
            visitor = await self._visitor_of(step.person)
            found = await read_record(self._reader, visitor) if visitor else None
            record = found[0] if found else None
            transactional = step.journey in TRANSACTIONAL
            if (
                now - step.due > too_late
                or record is None
                or not still_wanted(step, record, self._category_of, settings)
                or not consented(record, step, settings)
            ):
                await self._journeys.drop(step)
            elif quiet is not None and not transactional:
                await self._journeys.postpone(step, quiet)
                continue
            else:
                message = await self._message(step, campaigns, visitor)
                cap = 0 if transactional else settings.max_messages_per_week
                emitted += await self._journeys.emit(step, message, now, cap)
            # Sent, skipped or capped this time, a yearly step comes back next year
            # (unless the person is gone).
            again = follow_up(step) if record is not None else None
            if again is not None:
                await self._journeys.schedule((again,))
        return emitted

    def _category_of(self, item_id: str) -> str | None:
        item = self._item(item_id) if self._item else None
        return str(item["category"]) if item and item.get("category") else None

    async def sweep_segments(self, now: float, batch: int = 200) -> int:
        """Re-evaluate the next `batch` people, so segments that change only with time
        (a customer turning "lapsed", leaving "new") move without an event; a full pass
        takes about people / batch rounds (`state.sweep`). Returns how many were evaluated."""
        campaigns = self._campaigns.current
        if not campaigns.segments:
            return 0
        people = await self._walk.next_batch(batch)
        item = self._item or (lambda _: None)
        evaluated = 0
        for person in people:
            visitor = await self._visitor_of(person)
            if visitor is not None:
                await self._people.evaluate(visitor, campaigns, item, now, with_offers=False)
                evaluated += 1
        return evaluated

    async def _visitor_of(self, person: str) -> str | None:
        """A visitor id that reaches the person (a customer is reached through any of its
        visitors)."""
        visitor = keys.visitor_of(person)
        if visitor is None:
            visitors = await self._redis.smembers(keys.person_key("visitors", person))
            visitor = next((str(v) for v in visitors), None)
        return visitor

    async def _message(
        self, step: Step, campaigns: Campaigns, visitor: str | None
    ) -> dict[str, Any]:
        settings = campaigns.journeys
        products: list[str] = []
        if self._recommend is not None and visitor is not None:
            # Win-back sends them back to the bestsellers: no visitor, so trending.
            query = RecommendationQuery(
                visitor_id=None if step.journey == WIN_BACK else visitor,
                placement=PLACEMENTS.get(step.journey, Placement.EMAIL),
                limit=MESSAGE_PRODUCTS,
            )
            try:
                answer = await self._recommend(query)
                products = [item["item_id"] for item in answer["items"]]
            except ApiError:  # no model loaded yet: the message goes without products
                products = []
        return {
            "recipient": step.person,
            "channel": settings.channel,
            "journey": step.journey,
            "step": step.step,
            "offer_id": settings.offers.get(step.journey, ""),
            "products": orjson.dumps(products).decode(),
            "due": f"{step.due:.3f}",
        }

    async def run(self, deliverer: WebhookDeliverer | None, poll_seconds: float = 1.0) -> None:
        await self.ensure_group()
        if deliverer is not None:
            await deliverer.ensure_group()
        while True:
            handled = await self.process_events()
            now = time.time()
            await self.fire_due(now)
            await self.sweep_segments(now)
            if deliverer is not None:
                await deliverer.deliver(now)
            if not handled:
                await asyncio.sleep(poll_seconds)


def main() -> None:
    settings: Settings = get_settings()
    configure_logging(settings.log_format)
    url = _redis_url(settings)
    campaigns = CampaignStore(settings.campaigns_file, settings.campaigns_poll_seconds)
    campaigns.load_initial()
    consumer = f"{socket.gethostname()}-{os.getpid()}"

    async def serve() -> None:
        redis = await open_client(url)
        campaigns.start()
        deliverer = None
        if settings.webhook_url:
            deliverer = WebhookDeliverer(
                redis,
                settings.webhook_url,
                settings.webhook_secret,
                settings.webhook_max_attempts,
                settings.webhook_backoff_seconds,
                consumer,
            )
        engine = Engine.from_settings(redis, settings)
        await engine.start()
        recommend = RecommendationService(redis, engine, campaigns).answer
        try:
            worker = JourneyWorker(
                redis, campaigns, consumer, recommend, engine.item, lambda: engine.churn
            )
            await worker.run(deliverer)
        finally:
            await engine.stop()
            if deliverer is not None:
                await deliverer.close()
            await campaigns.stop()
            await redis.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def _redis_url(settings: Settings, wait_seconds: float = 120) -> str:
    """The configured Redis; unset, the embedded one that `python -m server` runs.

    The worker never starts a Valkey of its own: it waits for the server's, so the two
    always share one.
    """
    if settings.redis_url:
        return settings.redis_url
    local = f"redis://127.0.0.1:{settings.embedded_redis_port}"
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            SyncRedis.from_url(local, socket_connect_timeout=1).ping()
            return local
        except RedisError:
            if time.monotonic() > deadline:
                raise SystemExit(f"no Redis at {local}: start `python -m server` first") from None
            time.sleep(1)


if __name__ == "__main__":
    main()

"""Recording what recommendations, messages and experiments earned, as events arrive.

Runs after the ingest script, on the events it accepted (a retried event is never
counted twice), in a few pipelined round trips. The rules that decide a credit are the
pure functions of `campaigns.attribution`; this module reads and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from campaigns.attribution import (
    MESSAGE,
    REC_CLICK,
    AttributionWindows,
    Credit,
    Touch,
    Vocabulary,
    attribute,
    line_revenues,
    parse_recommendation_id,
)
from campaigns.experiments import Experiment
from models.events import Event, EventType
from state import keys
from state.ingest import TOUCHES_CAP, IngestResult

MESSAGE_EVENTS = (EventType.EMAIL_CLICK, EventType.EMAIL_OPEN)
SHOWN = {EventType.REC_IMPRESSION: "impressions", EventType.REC_CLICK: "clicks"}


class Accepted(NamedTuple):
    """An event the ingest script stored, with the person it was stored under.

    A tuple, not a frozen dataclass: one is built for every event of every batch."""

    event: Event
    person: str
    at: float
    new_order: bool


# The events attribution reads: impressions and clicks, message opens and clicks,
# orders. A view or a search (most of a store's events) earns or counts nothing.
ATTRIBUTED = frozenset({*SHOWN, *MESSAGE_EVENTS, EventType.PURCHASE})


def accepted_events(events: Sequence[Event], result: IngestResult, now: float) -> list[Accepted]:
    """The stored events attribution reads, with their persons and times."""
    return [
        Accepted(event, person, event.timestamp.timestamp() if event.timestamp else now, new)
        for event, person, new in zip(events, result.persons, result.new_orders, strict=True)
        if person is not None and event.type in ATTRIBUTED
    ]


class OutcomeRecorder:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(
        self,
        accepted: Sequence[Accepted],
        windows: AttributionWindows,
        experiments: Sequence[Experiment],
        vocabulary: Vocabulary,
    ) -> None:
        await self._record_shown(accepted, vocabulary)
        orders = [a for a in accepted if a.event.type is EventType.PURCHASE and a.new_order]
        if orders:
            await self._credit(orders, windows, experiments, vocabulary)

    async def _record_shown(self, accepted: Sequence[Accepted], vocabulary: Vocabulary) -> None:
        """Impressions and clicks counted, touches kept, first exposures counted."""
        pipe = self._redis.pipeline(transaction=False)
        exposures: dict[int, tuple[str, str]] = {}  # pipeline position -> (experiment, variant)
        for item in accepted:
            event = item.event
            if event.type in SHOWN and event.recommendation_id:
                position = self._count_shown(pipe, item, event.recommendation_id, vocabulary)
                if position is not None:
                    exposures[position[0]] = position[1]
            elif event.type in MESSAGE_EVENTS:
                journey = (event.properties or {}).get("journey")
                if isinstance(journey, str) and vocabulary.name("journey", journey):
                    _touch(pipe, item.person, Touch(MESSAGE, journey, "", item.at))
        if not len(pipe):
            return
        answers = await pipe.execute()
        # HSETNX answers 1 only for a person's first exposure: those are new visitors.
        firsts = [pair for position, pair in exposures.items() if answers[position] == 1]
        if firsts:
            pipe = self._redis.pipeline(transaction=False)
            for experiment, variant in firsts:
                pipe.hincrby(keys.variant_key(experiment, variant), "visitors", 1)
            await pipe.execute()

    @staticmethod
    def _count_shown(
        pipe: Pipeline, item: Accepted, recommendation_id: str, vocabulary: Vocabulary
    ) -> tuple[int, tuple[str, str]] | None:
        """Queue the counters for one impression or click; where its exposure mark sits."""
        tag = parse_recommendation_id(recommendation_id)
        measure = SHOWN[item.event.type]
        exposure = None
        if (
            tag is not None
            and tag.experiment
            and tag.variant
            and vocabulary.knows_variant(tag.experiment, tag.variant)
        ):
            field = keys.EXPOSURE_FIELD % tag.experiment
            exposure = (len(pipe), (tag.experiment, tag.variant))
            pipe.hsetnx(keys.person_key("profile", item.person), field, tag.variant)
            pipe.hincrby(keys.variant_key(tag.experiment, tag.variant), measure, 1)
        dimensions = [("placement", tag.placement if tag else "unknown")]
        if tag is not None:
            dimensions.append(("model", tag.model_version))
        for dimension, key in dimensions:
            name = vocabulary.name(dimension, key)
            if name is not None:
                field = keys.attribution_field(measure, dimension, name)
                pipe.hincrby(keys.ATTRIBUTION, field, 1)
        if item.event.type is EventType.REC_CLICK and item.event.item_id:
            click = Touch(REC_CLICK, recommendation_id, item.event.item_id, item.at)
            _touch(pipe, item.person, click)
        return exposure

    async def _credit(
        self,
        orders: Sequence[Accepted],
        windows: AttributionWindows,
        experiments: Sequence[Experiment],
        vocabulary: Vocabulary,
    ) -> None:
        names = [experiment.name for experiment in experiments]
        pipe = self._redis.pipeline(transaction=False)
        for order in orders:
            pipe.lrange(keys.person_key("touches", order.person), 0, -1)
            if names:
                pipe.hmget(
                    keys.person_key("profile", order.person),
                    [keys.EXPOSURE_FIELD % name for name in names],
                )
        reads = iter(await pipe.execute())
        writes = self._redis.pipeline(transaction=False)
        outcomes: list[tuple[int, str, str, float]] = []  # position, experiment, variant, value
        for order in orders:
            touches = [t for t in (Touch.decode(e) for e in next(reads)) if t]
            variants = next(reads) if names else []
            lines = line_revenues(
                [(line.item_id, line.price * line.quantity) for line in order.event.line_items()],
                order.event.order_value(),
            )
            offer = (order.event.properties or {}).get("offer_id")
            credits = attribute(
                lines, order.at, touches, windows, offer if isinstance(offer, str) else None
            )
            _count_credits(writes, credits, vocabulary)
            value = sum(line.revenue for line in lines)
            for name, variant in zip(names, variants, strict=True):
                if variant is not None:
                    profile = keys.person_key("profile", order.person)
                    outcomes.append((len(writes), name, variant, value))
                    writes.hincrby(profile, keys.EXPOSURE_ORDERS_FIELD % name, 1)
                    writes.hincrbyfloat(profile, keys.EXPOSURE_REVENUE_FIELD % name, value)
        answers = await writes.execute()
        if outcomes:
            await self._count_outcomes(outcomes, answers)

    async def _count_outcomes(
        self, outcomes: list[tuple[int, str, str, float]], answers: list[object]
    ) -> None:
        """Variant totals from each person's new running totals: a person becomes a
        converter at their first order and a repeater at their second, and the sum of
        squares moves by the change in their revenue squared."""
        pipe = self._redis.pipeline(transaction=False)
        for position, experiment, variant, value in outcomes:
            orders = int(str(answers[position]))
            revenue = float(str(answers[position + 1]))
            key = keys.variant_key(experiment, variant)
            if orders == 1:
                pipe.hincrby(key, "converters", 1)
            elif orders == 2:
                pipe.hincrby(key, "repeaters", 1)
            pipe.hincrbyfloat(key, "revenue", value)
            pipe.hincrbyfloat(key, "revenue_sq", revenue * revenue - (revenue - value) ** 2)
        await pipe.execute()


def _count_credits(pipe: Pipeline, credits: Sequence[Credit], vocabulary: Vocabulary) -> None:
    for credit in credits:
        name = vocabulary.name(credit.dimension, credit.key)
        if name is None:
            continue
        revenue = keys.attribution_field("revenue", credit.dimension, name)
        orders = keys.attribution_field("orders", credit.dimension, name)
        pipe.hincrbyfloat(keys.ATTRIBUTION, revenue, round(credit.revenue, 4))
        pipe.hincrby(keys.ATTRIBUTION, orders, 1)


def _touch(pipe: Pipeline, person: str, touch: Touch) -> None:
    key = keys.person_key("touches", person)
    pipe.lpush(key, touch.encode())
    pipe.ltrim(key, 0, TOUCHES_CAP - 1)

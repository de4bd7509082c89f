"""Evaluating a person against the campaigns: read, compute, keep segments current.

Shared by the server (per request) and the offline `load` job (after a backfill), so a
backfilled store starts with the same segment sizes live traffic would have built.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from campaigns.config import Campaigns, OfferKind
from campaigns.facts import ItemLookup, compute_facts
from campaigns.offers import Context, Eligible, eligible_offers
from campaigns.person import PersonRecord
from campaigns.segments import refresh_reads_recent, segments_of
from models.churn import ChurnScorer, ChurnScores, churn_features
from state.multiplex import Lanes
from state.offers import RedemptionCounts, Redemptions
from state.segments import store_membership, store_memberships
from state.visitors import PersonReader, read_record, read_records


@dataclass(frozen=True)
class Person:
    """One evaluation of a person against the campaigns in force."""

    visitor_id: str
    record: PersonRecord
    campaigns: Campaigns
    facts: dict[str, Any]
    segments: frozenset[str]
    offers: list[Eligible]
    redemptions: RedemptionCounts
    now: datetime


ChurnModel = Callable[[], ChurnScorer | None]


def no_churn_model() -> ChurnScorer | None:
    return None


class PeopleStore:
    """Reads people from Redis and evaluates them against a campaigns configuration.

    `churn_model` returns the churn scorer in service now (it changes with the bundle),
    so churn risk and predicted value are scored live on every evaluation.
    """

    def __init__(
        self,
        redis: Redis,
        churn_model: ChurnModel = no_churn_model,
        lanes: Lanes | None = None,
    ) -> None:
        self.redis = redis
        self.reader = PersonReader(redis, lanes)
        self.redemptions = Redemptions(redis)
        self.churn_model = churn_model

    async def evaluate(
        self,
        visitor_id: str,
        campaigns: Campaigns,
        item: ItemLookup,
        now: float | None = None,
        with_offers: bool = True,
    ) -> Person | None:
        """Facts, segments and (unless not wanted) eligible offers; segments stored if moved.

        One read: the person's keys and their redemption counts of the offers that matter
        (all of them for offers; the loyalty rewards alone, for points spent, otherwise).
        """
        loyalty = _loyalty_rewards(campaigns)
        offer_ids = tuple(o.id for o in campaigns.offers) if with_offers else loyalty
        found = await read_record(self.reader, visitor_id, offer_ids)
        if found is None:
            return None
        record, counts = found
        now = time.time() if now is None else now
        facts, segments = self._assess(record, counts, loyalty, campaigns, item, now)
        await store_membership(self.redis, record.person, record.segments, segments)
        moment = datetime.fromtimestamp(now, UTC)
        offers: list[Eligible] = []
        if with_offers:
            context = Context(campaigns, record, facts, segments, item, moment)
            offers = eligible_offers(context, counts.mine, counts.total, counts.periods)
        return Person(visitor_id, record, campaigns, facts, segments, offers, counts, moment)

    async def refresh_segments(
        self,
        visitor_ids: Sequence[str],
        campaigns: Campaigns,
        item: ItemLookup,
        now: float | None = None,
    ) -> None:
        """`evaluate` without offers for many people at once (after a batch of events):
        one read for all of them and one write for everyone whose segments moved, where
        one person at a time cost a round trip or two each."""
        loyalty = _loyalty_rewards(campaigns)
        with_recent = refresh_reads_recent(campaigns)
        found = await read_records(self.reader, visitor_ids, loyalty, with_recent)
        now = time.time() if now is None else now
        moves: dict[str, tuple[frozenset[str], frozenset[str]]] = {}  # person: before, after
        for entry in found:
            # Two of the batch's visitors may be one customer: evaluated once.
            if entry is not None and entry[0].person not in moves:
                record, counts = entry
                _, segments = self._assess(record, counts, loyalty, campaigns, item, now)
                moves[record.person] = (record.segments, segments)
        await store_memberships(self.redis, ((p, *move) for p, move in moves.items()))

    def _assess(
        self,
        record: PersonRecord,
        counts: RedemptionCounts,
        loyalty: tuple[str, ...],
        campaigns: Campaigns,
        item: ItemLookup,
        now: float,
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """The person's facts (churn scored live; points spent on the `loyalty`
        rewards) and the segments they are in now."""
        spent = sum(counts.points[offer_id] for offer_id in loyalty)
        scores = score_churn(self.churn_model(), record, now)
        facts = compute_facts(record, item, campaigns.loyalty, spent, now, scores)
        return facts, frozenset(segments_of(campaigns, facts, record, now))


def _loyalty_rewards(campaigns: Campaigns) -> tuple[str, ...]:
    """The offers whose redemptions spend points: their counts are read for every person."""
    return tuple(o.id for o in campaigns.offers if o.kind is OfferKind.LOYALTY_REWARD)


def score_churn(model: ChurnScorer | None, record: PersonRecord, now: float) -> ChurnScores | None:
    """Scores for people with a kept order (the population the models learnt from)."""
    if model is None or not record.kept_orders:
        return None
    row = churn_features(record.orders, record.counts, record.number("first_seen"), now)
    return model.score(row)

"""Evaluating a person against the campaigns: read, compute, keep segments current.

Shared by the server (per request) and the offline `load` job (after a backfill), so a
backfilled store starts with the same segment sizes live traffic would have built.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from campaigns.config import Campaigns, OfferKind
from campaigns.facts import ItemLookup, compute_facts
from campaigns.offers import Context, Eligible, eligible_offers
from campaigns.person import PersonRecord
from campaigns.segments import segments_of
from state.offers import RedemptionCounts, Redemptions
from state.segments import store_membership
from state.visitors import PersonReader, read_record


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


class PeopleStore:
    """Reads people from Redis and evaluates them against a campaigns configuration."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.reader = PersonReader(redis)
        self.redemptions = Redemptions(redis)

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
        loyalty = tuple(o.id for o in campaigns.offers if o.kind is OfferKind.LOYALTY_REWARD)
        offer_ids = tuple(o.id for o in campaigns.offers) if with_offers else loyalty
        found = await read_record(self.reader, visitor_id, offer_ids)
        if found is None:
            return None
        record, counts = found
        spent = sum(counts.points[offer_id] for offer_id in loyalty)
        now = time.time() if now is None else now
        facts = compute_facts(record, item, campaigns.loyalty, spent, now)
        segments = frozenset(segments_of(campaigns, facts, record, now))
        await store_membership(self.redis, record.person, record.segments, segments)
        moment = datetime.fromtimestamp(now, UTC)
        offers: list[Eligible] = []
        if with_offers:
            context = Context(campaigns, record, facts, segments, item, moment)
            offers = eligible_offers(context, counts.mine, counts.total, counts.periods)
        return Person(visitor_id, record, campaigns, facts, segments, offers, counts, moment)

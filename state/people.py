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
from state.offers import Redemptions
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

        Redemption counts are read only for the loyalty offers (points spent feed the
        facts) and for the offers the person would otherwise be eligible for.
        """
        return await _evaluate(self, visitor_id, campaigns, item, now, with_offers)


async def _evaluate(
    store: PeopleStore,
    visitor_id: str,
    campaigns: Campaigns,
    item: ItemLookup,
    now: float | None,
    with_offers: bool,
) -> Person | None:
    redis, redemptions = store.redis, store.redemptions
    record = await read_record(store.reader, visitor_id)
    if record is None:
        return None
    loyalty_ids = [o.id for o in campaigns.offers if o.kind is OfferKind.LOYALTY_REWARD]
    spent = sum((await redemptions.counts(loyalty_ids, record.person)).points.values())
    now = time.time() if now is None else now
    facts = compute_facts(record, item, campaigns.loyalty, spent, now)
    segments = frozenset(segments_of(campaigns, facts, record, now))
    await store_membership(redis, record.person, record.segments, segments)
    moment = datetime.fromtimestamp(now, UTC)
    offers: list[Eligible] = []
    if with_offers:
        context = Context(campaigns, record, facts, segments, item, moment)
        candidates = eligible_offers(context, {}, {})  # before counting anything
        ids = list(dict.fromkeys(e.offer.id for e in candidates))
        counts = await redemptions.counts(ids, record.person)
        offers = eligible_offers(context, counts.mine, counts.total, only=frozenset(ids))
    return Person(visitor_id, record, campaigns, facts, segments, offers, moment)

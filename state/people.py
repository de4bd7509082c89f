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
from state.visitors import read_record


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


async def evaluate_person(
    redis: Redis,
    visitor_id: str,
    campaigns: Campaigns,
    item: ItemLookup,
    redemptions: Redemptions,
    now: float | None = None,
) -> Person | None:
    """Facts, segments and eligible offers; segment membership is stored if it moved."""
    record = await read_record(redis, visitor_id)
    if record is None:
        return None
    offer_ids = [offer.id for offer in campaigns.offers]
    mine, total, points = await redemptions.counts(offer_ids, record.person)
    spent = sum(points[o.id] for o in campaigns.offers if o.kind is OfferKind.LOYALTY_REWARD)
    now = time.time() if now is None else now
    facts = compute_facts(record, item, campaigns.loyalty, spent, now)
    segments = frozenset(segments_of(campaigns, facts, record, now))
    await store_membership(redis, record.person, record.segments, segments)
    moment = datetime.fromtimestamp(now, UTC)
    offers = eligible_offers(Context(campaigns, record, facts, segments, item, moment), mine, total)
    return Person(visitor_id, record, campaigns, facts, segments, offers, moment)

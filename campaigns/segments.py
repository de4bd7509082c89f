"""Which segments a person is in, evaluated from their facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from campaigns.config import Campaigns
from campaigns.facts import RECENT_FACTS
from campaigns.person import PersonRecord
from campaigns.rules import facts_named, matches


def segments_of(
    campaigns: Campaigns, facts: Mapping[str, Any], record: PersonRecord, now: float
) -> list[str]:
    """The names of every segment whose rule the person satisfies, in file order."""
    memo: dict[str, bool] = {}

    def counts(event_type: str, days: int) -> int:
        return record.events_in_window(event_type, days, now)

    def member(name: str) -> bool:
        if name not in memo:
            memo[name] = False  # a rule that refers back to itself is not a match
            memo[name] = matches(campaigns.segments[name].rule, facts, counts, member)
        return memo[name]

    return [name for name in campaigns.segments if member(name)]


def facts_read(campaigns: Campaigns) -> set[str]:
    """Every fact some segment rule compares (see `facts_named`)."""
    return set().union(*(facts_named(segment.rule) for segment in campaigns.segments.values()))


def refresh_reads_recent(campaigns: Campaigns) -> bool:
    """Whether evaluating the segments needs people's recent-interaction lists (the
    largest part of a person to read): only if some rule compares a fact drawn from them."""
    return bool(RECENT_FACTS & facts_read(campaigns))

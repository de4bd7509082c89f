"""The segment rule language: facts compared with values, combined with all/any/not.

A rule is plain YAML:

    all:
      - orders: {gte: 1}
      - days_since_last_order: {gt: 180}
      - not: {email_opt_in: {eq: false}}
      - events: {type: view, days: 7, gte: 3}
      - segment: high_ltv

`check_rule` validates a rule and names the place of any mistake; `matches` evaluates
it over a person's facts. A fact that is unknown for a person (no orders yet, no churn
score yet) makes its comparison false rather than raising.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from models.events import EventType

COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "contains": lambda a, b: b in a,
    "contains_any": lambda a, b: bool(set(a) & set(b)),
}

# Every fact a rule may name, with what it means (shown by GET /v1/segments).
FACTS: dict[str, str] = {
    "lifetime_value": "net spend over all orders",
    "orders": "orders not returned",
    "average_order_value": "lifetime value / orders",
    "spend_12m": "net spend over the last 365 days",
    "days_since_last_order": "days since the latest order",
    "tenure_days": "days since first seen",
    "hours_since_last_seen": "hours since the latest event",
    "cart_value": "value of the cart at catalog prices",
    "cart_items": "units in the cart",
    "wishlist_items": "items on the wishlist",
    "categories_bought": "categories of purchased items",
    "categories_viewed": "categories of recently viewed items",
    "email_opt_in": "consented to email",
    "sms_opt_in": "consented to SMS",
    "is_customer": "linked to a customer id",
    "churn_risk": "probability of no purchase in the next 90 days (0-1), scored live",
    "predicted_value": "expected spend over the next 12 months, scored live",
    "loyalty_points": "spendable loyalty points",
    "loyalty_points_earned": "loyalty points earned, spent or not",
    "loyalty_tier": "loyalty tier name",
    "referrals": "friends referred",
}
COMBINATORS = ("all", "any", "not")


class RuleError(ValueError):
    """A mistake in a rule, with the path to it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def check_rule(rule: Any, path: str, segments: set[str]) -> None:
    """Raise RuleError naming the place of the first mistake in `rule`."""
    if not isinstance(rule, Mapping) or len(rule) != 1:
        raise RuleError(path, "a rule is a mapping with exactly one key")
    ((name, body),) = rule.items()
    if not isinstance(name, str):
        raise RuleError(path, "a rule's key is a name")
    where = f"{path}.{name}"
    if name in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise RuleError(where, "expects a non-empty list of rules")
        for n, part in enumerate(body):
            check_rule(part, f"{where}[{n}]", segments)
    elif name == "not":
        check_rule(body, where, segments)
    elif name == "segment":
        if not isinstance(body, str) or body not in segments:
            raise RuleError(where, f"unknown segment {body!r}")
    elif name == "events":
        _check_events(body, where)
    elif name in FACTS:
        _check_comparison(body, where)
    else:
        raise RuleError(where, f"unknown fact {name!r}; known: {', '.join(sorted(FACTS))}")


def matches(
    rule: Mapping[str, Any],
    facts: Mapping[str, Any],
    event_counts: Callable[[str, int], int],
    in_segment: Callable[[str], bool],
) -> bool:
    """Whether a person with these facts satisfies the (already checked) rule."""
    ((name, body),) = rule.items()
    if name == "all":
        return all(matches(r, facts, event_counts, in_segment) for r in body)
    if name == "any":
        return any(matches(r, facts, event_counts, in_segment) for r in body)
    if name == "not":
        return not matches(body, facts, event_counts, in_segment)
    if name == "segment":
        return in_segment(body)
    if name == "events":
        count = event_counts(body["type"], int(body["days"]))
        return _compare(count, {k: v for k, v in body.items() if k in COMPARATORS})
    return _compare(facts.get(name), body)


def facts_named(rule: Mapping[str, Any]) -> set[str]:
    """The names a checked rule compares itself: facts, "events" for an event count,
    "segment" for another segment (whose own rule names its facts: see
    `campaigns.segments.facts_read`, which takes every segment's)."""
    ((name, body),) = rule.items()
    if name in ("all", "any"):
        return set().union(*(facts_named(part) for part in body))
    if name == "not":
        return facts_named(body)
    return {name}


def _compare(value: Any, comparison: Mapping[str, Any]) -> bool:
    if value is None:
        return False
    try:
        return all(COMPARATORS[op](value, expected) for op, expected in comparison.items())
    except TypeError:
        return False  # e.g. a number compared with text: not a match


def _check_comparison(body: Any, path: str) -> None:
    if not isinstance(body, Mapping) or not body:
        raise RuleError(path, "expects a comparison such as {gt: 800}")
    for op in body:
        if not isinstance(op, str) or op not in COMPARATORS:
            raise RuleError(f"{path}.{op}", f"unknown comparison; use {', '.join(COMPARATORS)}")
    for op in ("in", "contains_any"):
        if op in body and not isinstance(body[op], list):
            raise RuleError(f"{path}.{op}", "expects a list")


def _check_events(body: Any, path: str) -> None:
    if not isinstance(body, Mapping):
        raise RuleError(path, "expects {type: ..., days: ..., gte: ...}")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in {k.value for k in EventType}:
        raise RuleError(f"{path}.type", f"unknown event type {body.get('type')!r}")
    days = body.get("days")
    if not isinstance(days, int) or not 1 <= days <= 90:
        raise RuleError(f"{path}.days", "is a whole number of days from 1 to 90")
    comparison = {k: v for k, v in body.items() if k not in ("type", "days")}
    _check_comparison(comparison, path)

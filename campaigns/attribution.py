"""Which recommendation, message or offer earned an order, and how much of it.

A recommendation id describes the answer it names (placement, model version and the
experiment variant), so a click reported by the storefront carries everything needed
to credit it, and serving a recommendation costs no write. Rules:

- an order line whose item the visitor clicked in a recommendation within the click
  window is credited to the latest such click (its placement, model and variant);
- the whole order is credited to the latest triggered message the visitor clicked or
  opened within the message window (last touch), and to the offer it was paid with.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from campaigns.experiments import NAME_PATTERN, PLACEMENTS
from campaigns.journeys import JOURNEYS

HOUR = 3600.0
NO_EXPERIMENT = "-"
_VERSION = re.compile(r"^[0-9A-Za-z_-]{1,48}$")
_NAME = re.compile(NAME_PATTERN)


class AttributionWindows(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    click_window_hours: float = Field(default=24.0, gt=0)
    message_window_hours: float = Field(default=120.0, gt=0)


@dataclass(frozen=True)
class RecommendationTag:
    placement: str
    model_version: str
    experiment: str | None = None
    variant: str | None = None


def new_recommendation_id(tag: RecommendationTag) -> str:
    """A fresh id that carries its tag: `<nonce>.<placement>.<model>.<experiment>.<variant>`."""
    return ".".join(
        (
            secrets.token_hex(6),
            tag.placement,
            tag.model_version,
            tag.experiment or NO_EXPERIMENT,
            tag.variant or NO_EXPERIMENT,
        )
    )


def parse_recommendation_id(recommendation_id: str) -> RecommendationTag | None:
    """The tag inside an id, or None for an id this server did not mint in this form."""
    parts = recommendation_id.split(".")
    if len(parts) != 5:
        return None
    _, placement, version, experiment, variant = parts
    if placement not in PLACEMENTS or not _VERSION.match(version):
        return None
    if (experiment == NO_EXPERIMENT) != (variant == NO_EXPERIMENT):
        return None
    if experiment == NO_EXPERIMENT:
        return RecommendationTag(placement, version)
    if not (_NAME.match(experiment) and _NAME.match(variant)):
        return None
    return RecommendationTag(placement, version, experiment, variant)


OTHER = "other"


@dataclass(frozen=True)
class Vocabulary:
    """The names attribution may count. Recommendation ids and offer ids come from the
    storefront, so anything made up is folded into "other" or dropped: counters stay
    bounded whatever a caller sends."""

    models: frozenset[str]
    variants: frozenset[str]  # "experiment/variant"
    offers: frozenset[str]
    journeys: frozenset[str] = JOURNEYS

    def name(self, dimension: str, key: str) -> str | None:
        """The key to count under, "other" for an unknown model, None to drop."""
        if dimension == "model":
            return key if key in self.models else OTHER
        allowed = {"variant": self.variants, "offer": self.offers, "journey": self.journeys}
        if dimension in allowed:
            return key if key in allowed[dimension] else None
        return key

    def knows_variant(self, experiment: str, variant: str) -> bool:
        return f"{experiment}/{variant}" in self.variants


REC_CLICK = "rec"
MESSAGE = "msg"


@dataclass(frozen=True)
class Touch:
    """A moment that may later earn credit: a recommendation click or a message opened."""

    channel: str  # REC_CLICK or MESSAGE
    ref: str  # the recommendation id, or the journey's name
    item_id: str
    at: float

    def encode(self) -> str:
        """Tab-separated and time last: a sign-in's merge orders lists on that field."""
        return f"{self.channel}\t{self.ref}\t{self.item_id}\t{self.at}"

    @classmethod
    def decode(cls, entry: str) -> Touch | None:
        parts = entry.split("\t")
        if len(parts) != 4:
            return None
        try:
            return cls(parts[0], parts[1], parts[2], float(parts[3]))
        except ValueError:
            return None


@dataclass(frozen=True)
class OrderLine:
    item_id: str
    revenue: float


@dataclass(frozen=True)
class Credit:
    dimension: str  # placement, model, variant, journey or offer
    key: str
    revenue: float


def line_revenues(lines: Sequence[tuple[str, float]], order_value: float) -> list[OrderLine]:
    """Each line's share of the order; lines without prices share the value evenly."""
    total = sum(amount for _, amount in lines)
    if not lines:
        return []
    if total <= 0:
        return [OrderLine(item, order_value / len(lines)) for item, _ in lines]
    return [OrderLine(item, order_value * amount / total) for item, amount in lines]


def attribute(
    lines: Sequence[OrderLine],
    at: float,
    touches: Sequence[Touch],
    windows: AttributionWindows,
    offer_id: str | None = None,
) -> list[Credit]:
    """The credits one order earns; touches after the order never count."""
    credits: list[Credit] = []
    click_from = at - windows.click_window_hours * HOUR
    latest_click: dict[str, Touch] = {}
    for touch in touches:
        if touch.channel == REC_CLICK and click_from <= touch.at <= at:
            known = latest_click.get(touch.item_id)
            if known is None or touch.at > known.at:
                latest_click[touch.item_id] = touch
    earned: dict[str, float] = {}
    for line in lines:
        click = latest_click.get(line.item_id)
        if click is not None:
            earned[click.ref] = earned.get(click.ref, 0.0) + line.revenue
    for recommendation_id, revenue in earned.items():
        credits.extend(_recommendation_credits(recommendation_id, revenue))
    order_value = sum(line.revenue for line in lines)
    message_from = at - windows.message_window_hours * HOUR
    messages = [t for t in touches if t.channel == MESSAGE and message_from <= t.at <= at]
    if messages:
        credits.append(Credit("journey", max(messages, key=lambda t: t.at).ref, order_value))
    if offer_id:
        credits.append(Credit("offer", offer_id, order_value))
    return credits


def _recommendation_credits(recommendation_id: str, revenue: float) -> list[Credit]:
    tag = parse_recommendation_id(recommendation_id)
    if tag is None:
        return [Credit("placement", "unknown", revenue)]
    credits = [
        Credit("placement", tag.placement, revenue),
        Credit("model", tag.model_version, revenue),
    ]
    if tag.experiment and tag.variant:
        credits.append(Credit("variant", f"{tag.experiment}/{tag.variant}", revenue))
    return credits

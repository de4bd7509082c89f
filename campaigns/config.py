"""The campaigns file: segments, content blocks, offers and the loyalty programme.

Loaded from YAML and validated whole; a mistake is reported with the path of the field
(and the file's line where YAML knows it), and nothing of a broken file is used.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from campaigns.attribution import AttributionWindows
from campaigns.experiments import Experiment, check_disjoint
from campaigns.journeys import JourneySettings
from campaigns.rules import RuleError, check_rule

THRESHOLD_VALUES = ("amount_to_free_shipping", "free_shipping_threshold")
FILL_VALUES = (
    "amount_to_free_shipping", "cart_value", "free_shipping_threshold", "loyalty_points",
    "loyalty_tier", "loyalty_label", "first_name", "orders", "lifetime_value",
)  # fmt: skip


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Segment(Strict):
    description: str = ""
    rule: dict[str, Any]


class ContentBlock(Strict):
    id: str
    slot: str
    priority: int = 0
    segments: list[str] = Field(default_factory=list, description="any of; empty: everyone")
    title: str = ""
    template: str
    link: str | None = None
    free_shipping_threshold: float | None = None

    @model_validator(mode="after")
    def _known_placeholders(self) -> ContentBlock:
        """Every placeholder is plain {name}, known, and fillable for this block."""
        try:
            parts = list(string.Formatter().parse(self.template))
        except ValueError as exc:
            raise ValueError(f"template is malformed: {exc}") from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in FILL_VALUES:
                raise ValueError(f"template uses unknown value {{{name}}}; known: {FILL_VALUES}")
            if spec or conversion:
                raise ValueError(f"template value {{{name}}} takes no format or conversion")
            if name in THRESHOLD_VALUES and self.free_shipping_threshold is None:
                raise ValueError(f"{{{name}}} needs free_shipping_threshold on the block")
        return self


class OfferKind(StrEnum):
    LOYALTY_REWARD = "loyalty_reward"
    BIRTHDAY = "birthday"
    WIN_BACK = "win_back"
    WISHLIST_DISCOUNT = "wishlist_discount"
    CART_RECOVERY = "cart_recovery"
    SCARCITY = "scarcity"
    SHIPMENT_DELAY_APOLOGY = "shipment_delay_apology"
    REFERRAL_CREDIT = "referral_credit"
    FREE_GIFT = "free_gift"
    CASHBACK = "cashback"


class DiscountType(StrEnum):
    PERCENTAGE = "percentage"
    FIXED_AMOUNT = "fixed_amount"
    FREE_SHIPPING = "free_shipping"
    FREE_PRODUCT = "free_product"


class Offer(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: OfferKind
    title: str
    discount_type: DiscountType
    discount_value: float = Field(default=0.0, ge=0)
    free_shipping: bool = False
    min_order_value: float = Field(default=0.0, ge=0)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_hours: float | None = Field(default=None, gt=0, description="after the trigger")
    announce_hours: float | None = Field(
        default=None, gt=0, description="scarcity: shown only this close to valid_until"
    )
    per_customer_limit: int = Field(default=1, ge=1)
    budget: int | None = Field(default=None, ge=1, description="total redemptions allowed")
    segments: list[str] = Field(default_factory=list, description="any of; empty: everyone")
    idle_hours: float = Field(default=1.0, gt=0, description="cart_recovery: cart idle this long")
    gift_items: list[str] = Field(default_factory=list, description="free_gift: candidates")
    cashback_percent: float = Field(default=0.0, ge=0, le=100)

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """Naive times are UTC, so every comparison is between aware datetimes."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> Offer:
        if self.discount_type is DiscountType.PERCENTAGE and not 0 < self.discount_value <= 100:
            raise ValueError("a percentage discount_value is between 0 and 100")
        if self.kind is OfferKind.SCARCITY and self.valid_until is None:
            raise ValueError("a scarcity offer needs valid_until")
        if self.kind is OfferKind.FREE_GIFT and not self.gift_items:
            raise ValueError("a free_gift offer needs gift_items")
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValueError("valid_from must come before valid_until")
        return self


class Tier(Strict):
    name: str
    label: str
    min_spend_12m: float = Field(ge=0)
    points_per_dollar: float = Field(gt=0)
    perks: list[str] = Field(default_factory=list)


class Loyalty(Strict):
    tiers: list[Tier] = Field(min_length=1)
    reward_min_points: int = Field(default=100, ge=1)
    reward_min_order_value: float = Field(default=10.0, ge=0)
    reward_needs_repeat_order: bool = True
    points_per_percent_off: float = Field(default=10.0, gt=0, description="200 points = 20%")
    reward_max_percent: float = Field(default=20.0, gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Loyalty:
        spends = [tier.min_spend_12m for tier in self.tiers]
        if spends != sorted(spends) or spends[0] != 0:
            raise ValueError("tiers go from min_spend_12m 0 upwards")
        return self


DEFAULT_LOYALTY = Loyalty(
    tiers=[
        Tier(name="base", label="Member", min_spend_12m=0, points_per_dollar=2),
        Tier(name="middle", label="Silver", min_spend_12m=300, points_per_dollar=4),
        Tier(name="top", label="Gold", min_spend_12m=800, points_per_dollar=6),
    ]
)


class Campaigns(Strict):
    currency: Literal["USD", "EUR", "GBP"] = "USD"
    segments: dict[str, Segment] = Field(default_factory=dict)
    content: list[ContentBlock] = Field(default_factory=list)
    offers: list[Offer] = Field(default_factory=list)
    loyalty: Loyalty = DEFAULT_LOYALTY
    journeys: JourneySettings = JourneySettings()
    experiments: list[Experiment] = Field(default_factory=list)
    attribution: AttributionWindows = AttributionWindows()

    @model_validator(mode="after")
    def _references(self) -> Campaigns:
        names = set(self.segments)
        for name, segment in self.segments.items():
            check_rule(segment.rule, f"segments.{name}.rule", names)
        for where, targets in [
            *((f"content.{b.id}.segments", b.segments) for b in self.content),
            *((f"offers.{o.id}.segments", o.segments) for o in self.offers),
        ]:
            for target in targets:
                if target not in names:
                    raise RuleError(where, f"unknown segment {target!r}")
        ids = [offer.id for offer in self.offers]
        if len(ids) != len(set(ids)):
            raise ValueError("offer ids must be unique")
        for journey, offer_id in self.journeys.offers.items():
            if offer_id not in ids:
                raise RuleError(f"journeys.offers.{journey}", f"unknown offer {offer_id!r}")
        experiment_names = [experiment.name for experiment in self.experiments]
        if len(experiment_names) != len(set(experiment_names)):
            raise ValueError("experiment names must be unique")
        check_disjoint(self.experiments)
        return self

    def offer(self, offer_id: str) -> Offer | None:
        return next((offer for offer in self.offers if offer.id == offer_id), None)


class CampaignsError(ValueError):
    """The file cannot be used; the message names where and what."""


def parse_campaigns(text: str, source: str = "campaigns file") -> Campaigns:
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CampaignsError(f"{source}: not valid YAML: {exc}") from None
    lines = _line_numbers(node)
    try:
        return Campaigns.model_validate(data or {})
    except (TypeError, KeyError, AttributeError) as exc:  # shapes no validator expected
        raise CampaignsError(f"{source}: malformed campaigns: {exc!r}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        rule_error = first.get("ctx", {}).get("error")
        if isinstance(rule_error, RuleError):
            path = rule_error.path
        message = str(rule_error.problem) if isinstance(rule_error, RuleError) else first["msg"]
        raise CampaignsError(f"{source}{_at(lines, path)}: {path}: {message}") from None


def load_campaigns(path: Path) -> Campaigns:
    return parse_campaigns(path.read_text(), str(path))


def _at(lines: dict[str, int], path: str) -> str:
    """', line N' for the deepest part of `path` whose line YAML recorded."""
    parts = path.replace("[", ".").replace("]", "").split(".")
    for end in range(len(parts), 0, -1):
        line = lines.get(".".join(parts[:end]))
        if line is not None:
            return f", line {line}"
    return ""


def _line_numbers(node: Any, prefix: str = "") -> dict[str, int]:
    """Dotted path -> 1-based line, for every mapping key and list entry in the YAML."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            lines[path] = key.start_mark.line + 1
            lines.update(_line_numbers(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for n, value in enumerate(node.value):
            path = f"{prefix}.{n}"
            lines[path] = value.start_mark.line + 1
            lines.update(_line_numbers(value, path))
    return lines

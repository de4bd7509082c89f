"""Triggered journeys: which message steps an event schedules, cancels, or still allows.

Pure: `plan` turns one event into steps to schedule and journeys to cancel, and
`still_wanted` decides at firing time whether a step's condition still holds for the
person as they are now (a cart recovered by a purchase is not chased).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from campaigns.person import PersonRecord
from models.weights import SECONDS_PER_DAY

CART_ABANDONMENT = "cart_abandonment"
POST_PURCHASE = "post_purchase"
SHIPMENT_DELAYED = "shipment_delayed"


class JourneySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cart_abandonment_minutes: float = Field(default=60, gt=0)
    post_purchase_first_days: float = Field(default=7, gt=0)
    post_purchase_second_days: float = Field(default=3, gt=0, description="after the first")
    channel: str = "email"
    max_lateness_hours: float = Field(
        default=24, gt=0, description="a step this overdue (a worker was down) is dropped"
    )
    offers: dict[str, str] = Field(
        default_factory=dict, description="journey -> offer id to attach"
    )


@dataclass(frozen=True)
class Step:
    """One message to send at `due`, unique by (journey, step, person, anchor)."""

    journey: str
    step: str
    person: str
    due: float
    anchor: str  # what started it: the cart's last change, the order, the delay

    @property
    def member(self) -> str:
        return "\t".join((self.journey, self.step, self.person, self.anchor))

    @classmethod
    def parse(cls, member: str, due: float) -> Step:
        journey, step, person, anchor = member.split("\t")
        return cls(journey, step, person, due, anchor)


@dataclass(frozen=True)
class Plan:
    schedule: tuple[Step, ...] = ()
    cancel: tuple[str, ...] = ()  # journeys whose pending steps for the person are void


def plan(event: Mapping[str, Any], person: str, ts: float, settings: JourneySettings) -> Plan:
    """What one stored event means for the person's journeys."""
    kind = event["type"]
    if kind == "add_to_cart":
        due = ts + settings.cart_abandonment_minutes * 60
        # A newer cart change restarts the clock: the old reminder is void.
        return Plan((Step(CART_ABANDONMENT, "reminder", person, due, f"{ts:.3f}"),),
                    (CART_ABANDONMENT,))  # fmt: skip
    if kind == "purchase":
        order = str(event.get("order_id") or event.get("event_id") or f"{ts:.3f}")
        first = ts + settings.post_purchase_first_days * SECONDS_PER_DAY
        second = first + settings.post_purchase_second_days * SECONDS_PER_DAY
        steps = (
            Step(POST_PURCHASE, "recommendations", person, first, order),
            Step(POST_PURCHASE, "reviews", person, second, order),
        )
        return Plan(steps, (CART_ABANDONMENT,))
    if kind == "shipment_delayed":
        return Plan((Step(SHIPMENT_DELAYED, "apology", person, ts, f"{ts:.3f}"),))
    return Plan()


def still_wanted(step: Step, record: PersonRecord | None) -> bool:
    """Does the step's reason still hold for the person as they are now?"""
    if record is None:
        return False
    if step.journey == CART_ABANDONMENT:
        return bool(record.cart) and not _ordered_after(record, float(step.anchor))
    if step.journey == POST_PURCHASE and step.step == "reviews":
        placed = next((o.at for o in record.orders if o.key == step.anchor), None)
        return placed is not None and not _ordered_after(record, placed)
    return True


def _ordered_after(record: PersonRecord, moment: float) -> bool:
    return any(order.at > moment for order in record.kept_orders)

"""Triggered journeys: which message steps an event schedules, cancels, or still allows.

Pure: `plan` turns one event into steps to schedule and journeys to cancel, and
`still_wanted` decides at firing time whether a step's condition still holds for the
person as they are now (a cart recovered by a purchase is not chased).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from campaigns.person import PersonRecord
from models.weights import SECONDS_PER_DAY

CategoryOf = Callable[[str], str | None]

CART_ABANDONMENT = "cart_abandonment"
POST_PURCHASE = "post_purchase"
SHIPMENT_DELAYED = "shipment_delayed"
BROWSE_ABANDONMENT = "browse_abandonment"
WIN_BACK = "win_back"
WISHLIST_DISCOUNT = "wishlist_discount"
BIRTHDAY = "birthday"
REFERRAL_INVITATION = "referral_invitation"
JOURNEYS = frozenset({CART_ABANDONMENT, POST_PURCHASE, SHIPMENT_DELAYED, BROWSE_ABANDONMENT,
                      WIN_BACK, WISHLIST_DISCOUNT, BIRTHDAY, REFERRAL_INVITATION})  # fmt: skip
# Messages a customer needs whatever their caps: service, not marketing.
TRANSACTIONAL = frozenset({SHIPMENT_DELAYED})


class JourneySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cart_abandonment_minutes: float = Field(default=60, gt=0)
    post_purchase_first_days: float = Field(default=7, gt=0)
    post_purchase_second_days: float = Field(default=3, gt=0, description="after the first")
    browse_minutes: float = Field(default=30, gt=0)
    browse_min_views: int = Field(default=3, ge=1, description="views in one category")
    win_back_days: float = Field(default=180, gt=0)
    wishlist_hours: float = Field(default=24, gt=0)
    channel: str = "email"
    max_messages_per_week: int = Field(default=3, ge=1, description="marketing messages")
    quiet_hours_utc: tuple[int, int] | None = Field(
        default=None, description="[start, end) hours in UTC with no messages, e.g. [22, 7]"
    )
    max_lateness_hours: float = Field(
        default=24, gt=0, description="a step this overdue (a worker was down) is dropped"
    )
    offers: dict[str, str] = Field(
        default_factory=dict, description="journey -> offer id to attach"
    )
    consent: Literal["opt_in", "opt_out"] = Field(
        default="opt_in",
        description="opt_in: marketing only to people who said yes (<channel>_opt_in); "
        "opt_out: to everyone who has not said no",
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
                    (CART_ABANDONMENT, BROWSE_ABANDONMENT))  # fmt: skip
    if kind == "purchase":
        order = str(event.get("order_id") or event.get("event_id") or f"{ts:.3f}")
        first = ts + settings.post_purchase_first_days * SECONDS_PER_DAY
        second = first + settings.post_purchase_second_days * SECONDS_PER_DAY
        steps = (
            Step(POST_PURCHASE, "recommendations", person, first, order),
            Step(POST_PURCHASE, "reviews", person, second, order),
            Step(REFERRAL_INVITATION, "invite", person, ts, order),
            Step(
                WIN_BACK,
                "bestsellers",
                person,
                ts + settings.win_back_days * SECONDS_PER_DAY,
                order,
            ),
        )
        # An older order's win-back is dropped at firing time, when this newer order is
        # seen: cancelling here would let a replayed old purchase void a newer one's.
        return Plan(steps, (CART_ABANDONMENT, BROWSE_ABANDONMENT))
    if kind == "shipment_delayed":
        return Plan((Step(SHIPMENT_DELAYED, "apology", person, ts, f"{ts:.3f}"),))
    if kind == "view" and event.get("category"):
        due = ts + settings.browse_minutes * 60
        step = Step(BROWSE_ABANDONMENT, "category_picks", person, due, str(event["category"]))
        return Plan((step,), (BROWSE_ABANDONMENT,))
    if kind == "wishlist_add" and event.get("item_id"):
        due = ts + settings.wishlist_hours * 3600
        return Plan((Step(WISHLIST_DISCOUNT, "discount", person, due, str(event["item_id"])),))
    if kind == "signup":
        birthday = _next_birthday((event.get("properties") or {}).get("birthday"), ts)
        if birthday is not None:
            return Plan(
                (Step(BIRTHDAY, "coupon", person, birthday, f"{birthday:.0f}"),), (BIRTHDAY,)
            )
    return Plan()


def still_wanted(
    step: Step, record: PersonRecord | None, category_of: CategoryOf, settings: JourneySettings
) -> bool:
    """Does the step's reason still hold for the person as they are now?"""
    if record is None:
        return False
    if step.journey == CART_ABANDONMENT:
        return bool(record.cart) and not _ordered_after(record, float(step.anchor))
    if step.journey == POST_PURCHASE and step.step == "reviews":
        placed = _order_time(record, step.anchor)
        return placed is not None and not _ordered_after(record, placed)
    if step.journey == WIN_BACK:
        placed = _order_time(record, step.anchor)
        return placed is not None and not _ordered_after(record, placed)
    if step.journey == REFERRAL_INVITATION:
        return [order.key for order in record.kept_orders] == [step.anchor]  # the first order
    if step.journey == BROWSE_ABANDONMENT:
        views = [x for x in record.recent or () if x.event_type == "view"]
        in_category = sum(1 for x in views if category_of(x.item_id) == step.anchor)
        return not record.cart and in_category >= settings.browse_min_views
    if step.journey == WISHLIST_DISCOUNT:
        return step.anchor in record.wishlist and step.anchor not in record.purchased
    return True


def consented(record: PersonRecord, step: Step, settings: JourneySettings) -> bool:
    """Service messages (a delayed shipment) go to every customer. Marketing goes only
    to those who said yes, unless the store runs on opt-out, where a "no" stops it."""
    if step.journey in TRANSACTIONAL:
        return True
    flag = record.flag(f"{settings.channel}_opt_in")
    return flag is True if settings.consent == "opt_in" else flag is not False


def quiet_until(now: float, quiet_hours: tuple[int, int] | None) -> float | None:
    """The end of the quiet window `now` falls in (UTC), or None if sending is fine now."""
    if quiet_hours is None:
        return None
    start, end = quiet_hours
    day = now - now % SECONDS_PER_DAY
    hour = (now - day) / 3600
    inside = start <= hour < end if start < end else hour >= start or hour < end
    if not inside:
        return None
    end_today = day + end * 3600
    return end_today if end_today > now else end_today + SECONDS_PER_DAY


def _order_time(record: PersonRecord, key: str) -> float | None:
    return next((order.at for order in record.orders if order.key == key), None)


def _ordered_after(record: PersonRecord, moment: float) -> bool:
    return any(order.at > moment for order in record.kept_orders)


def follow_up(step: Step) -> Step | None:
    """The step that comes back after this one: next year's birthday coupon."""
    if step.journey != BIRTHDAY:
        return None
    when = datetime.fromtimestamp(step.due, UTC)
    following = _next_birthday(f"{when.month:02d}-{when.day:02d}", step.due)
    if following is None:
        return None
    return Step(BIRTHDAY, step.step, step.person, following, f"{following:.0f}")


def _next_birthday(value: Any, after: float) -> float | None:
    """Midnight UTC of the next birthday (YYYY-MM-DD or MM-DD) after `after`; a 29
    February birthday falls on the 28th in other years."""
    if not isinstance(value, str):
        return None
    try:
        month, day = (int(part) for part in value[-5:].split("-"))
        datetime(2000, month, day)  # a real date in a leap year, or ValueError
    except ValueError:
        return None
    year = datetime.fromtimestamp(after, UTC).year
    for candidate_year in (year, year + 1, year + 2):
        leap_day = (month, day) == (2, 29) and not calendar.isleap(candidate_year)
        moment = datetime(candidate_year, month, 28 if leap_day else day, tzinfo=UTC).timestamp()
        if moment > after:
            return moment
    return None

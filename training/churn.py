"""Churn risk and customer value, trained on history replayed to rolling cutoffs.

For each cutoff, every person with an order before it becomes one row: the features of
`models.churn.churn_features` (which look only before the cutoff), the label "no
purchase in the next 90 days", and the spend in those 90 days. Cutoffs step back 30
days at a time from the latest one whose label window has closed, so no label looks
past the end of the history (or past an evaluation cutoff, when one is given). The
classifier is gradient-boosted trees with Platt calibration; both models are exported
to ONNX beside the recommendation bundle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError
from tqdm import tqdm

from models.churn import CHURN_HORIZON_DAYS, DAY, FEATURES, ChurnScorer, churn_features
from models.events import Event
from state.keys import customer_person, visitor_person
from training.datafiles import parse_timestamp

SNAPSHOT_STEP_DAYS = 30
MIN_HISTORY_DAYS = 60
HORIZON = CHURN_HORIZON_DAYS * DAY


@dataclass(frozen=True)
class PastOrder:
    at: float
    value: float
    returned: bool = False


@dataclass
class PersonHistory:
    """What the server's profile keeps about a person, rebuilt from the event log."""

    orders: dict[str, PastOrder] = field(default_factory=dict)
    returns: dict[str, float] = field(default_factory=dict)  # order key -> when returned
    days: dict[str, int] = field(default_factory=dict)  # "type:day" -> events that day
    first_seen: float | None = None

    def orders_at(self, cutoff: float) -> list[PastOrder]:
        """The ledger as it stood at `cutoff`: returns made later are not known yet."""
        return [
            PastOrder(o.at, o.value, key in self.returns and self.returns[key] < cutoff)
            for key, o in self.orders.items()
            if o.at < cutoff
        ]

    def features(self, cutoff: float) -> npt.NDArray[np.float32]:
        return churn_features(self.orders_at(cutoff), self.days, self.first_seen, cutoff)

    def spend_between(self, start: float, end: float) -> tuple[int, float]:
        future = [o for o in self.orders.values() if start <= o.at < end]
        return len(future), sum(o.value for o in future)


@dataclass
class Snapshots:
    features: npt.NDArray[np.float32]
    churned: npt.NDArray[np.int64]  # 1: no purchase in the 90 days after the cutoff
    next_spend: npt.NDArray[np.float32]
    cutoffs: npt.NDArray[np.float64]

    def where(self, mask: npt.NDArray[np.bool_]) -> Snapshots:
        return Snapshots(
            self.features[mask], self.churned[mask], self.next_spend[mask], self.cutoffs[mask]
        )


@dataclass
class History:
    """The event log replayed into per-person ledgers, with when each visitor was first
    linked to a customer, so that people can be seen as the server knew them at any
    moment: a visitor linked later is still its own anonymous person before that."""

    histories: dict[str, PersonHistory]  # as events were filed at the time
    links: dict[str, tuple[str, float]]  # visitor person -> (customer person, linked at)
    first: float
    last: float

    def person_at(self, person: str, moment: float) -> str:
        link = self.links.get(person)
        return link[0] if link is not None and link[1] < moment else person

    def people_at(self, moment: float) -> dict[str, PersonHistory]:
        """Everyone as the server held them at `moment` (merges made by then applied)."""
        groups: dict[str, list[PersonHistory]] = {}
        for person, history in self.histories.items():
            groups.setdefault(self.person_at(person, moment), []).append(history)
        people = {}
        for person, parts in groups.items():
            if len(parts) == 1:
                people[person] = parts[0]
            else:
                merged = PersonHistory()
                for part in parts:
                    _merge_histories(merged, part)
                people[person] = merged
        return people


def replay(events: Iterable[dict[str, Any]]) -> History:
    """The order ledgers, returns and daily event counts the server would hold, filed
    under the person each event reached when it arrived (events in time order)."""
    latest_link: dict[str, str] = {}
    links: dict[str, tuple[str, float]] = {}
    histories: dict[str, PersonHistory] = {}
    first, last = float("inf"), float("-inf")
    for row in tqdm(events, desc="replaying events", unit="ev", unit_scale=True):
        at = parse_timestamp(row["timestamp"])
        first, last = min(first, at), max(last, at)
        visitor, customer = row["visitor_id"], row.get("customer_id")
        if customer:
            links.setdefault(visitor_person(visitor), (customer_person(customer), at))
            latest_link[visitor] = customer
        linked = customer or latest_link.get(visitor)
        person = customer_person(linked) if linked else visitor_person(visitor)
        history = histories.setdefault(person, PersonHistory())
        history.first_seen = at if history.first_seen is None else min(history.first_seen, at)
        kind = row["type"]
        day_key = f"{kind}:{int(at // DAY)}"
        history.days[day_key] = history.days.get(day_key, 0) + 1
        if kind == "purchase":
            try:
                event = Event.model_validate(row)  # the ledger's own rules for key and value
            except ValidationError:
                continue  # the server would have refused it too
            key = event.ledger_key() or f"at:{at}"
            history.orders.setdefault(key, PastOrder(at, event.ledger_value()))
        elif kind == "return_requested" and row.get("order_id"):
            history.returns.setdefault(row["order_id"], at)
    return History(histories, links, first, last)


def snapshots(history: History, cutoffs: Iterable[float]) -> Snapshots:
    """One row per person with a kept order before each cutoff: features as the server
    knew the person at the cutoff, the label from what it knew at the window's end."""
    rows, labels, spends, when = [], [], [], []
    for cutoff in cutoffs:
        later = history.people_at(cutoff + HORIZON)
        for person, known in history.people_at(cutoff).items():
            if not any(not o.returned for o in known.orders_at(cutoff)):
                continue
            rows.append(known.features(cutoff))
            outcome = later[history.person_at(person, cutoff + HORIZON)]
            orders, spend = outcome.spend_between(cutoff, cutoff + HORIZON)
            labels.append(0 if orders else 1)
            spends.append(spend)
            when.append(cutoff)
    return Snapshots(
        np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURES)),
        np.asarray(labels, dtype=np.int64),
        np.asarray(spends, dtype=np.float32),
        np.asarray(when, dtype=np.float64),
    )


def rolling_cutoffs(first: float, labels_end: float) -> list[float]:
    """Midnights every 30 days whose 90-day label window closes by `labels_end`, oldest
    first, each with at least 60 days of history before it."""
    cutoff = (labels_end - HORIZON) // DAY * DAY
    cutoffs = []
    while cutoff - first >= MIN_HISTORY_DAYS * DAY:
        cutoffs.append(cutoff)
        cutoff -= SNAPSHOT_STEP_DAYS * DAY
    return sorted(cutoffs)


@dataclass
class ChurnModels:
    classifier: Any
    regressor: Any
    calibration: dict[str, float]
    train_rows: int
    cutoffs: list[float]


def fit_churn(train: Snapshots, seed: int = 42) -> ChurnModels:
    """Trees on every cutoff. The calibration is fitted on out-of-fold scores (each
    cutoff scored by trees that did not see it), so it learns how the trees err on
    snapshots they have not seen, as they will in service."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    classifier = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.03, max_leaf_nodes=8, min_samples_leaf=80,
        l2_regularization=1.0, random_state=seed,
    )  # fmt: skip
    folds = min(5, len(np.unique(train.cutoffs)))
    unseen = cross_val_predict(
        classifier, train.features, train.churned, groups=train.cutoffs,
        cv=GroupKFold(n_splits=folds), method="predict_proba",
    )[:, 1]  # fmt: skip
    classifier.fit(train.features, train.churned)
    raw = np.clip(unseen, 1e-6, 1 - 1e-6)
    platt = LogisticRegression().fit(np.log(raw / (1 - raw)).reshape(-1, 1), train.churned)
    regressor = HistGradientBoostingRegressor(
        max_iter=200, learning_rate=0.03, max_leaf_nodes=8, min_samples_leaf=80,
        random_state=seed,
    ).fit(train.features, train.next_spend)  # fmt: skip
    calibration = {"slope": float(platt.coef_[0][0]), "intercept": float(platt.intercept_[0])}
    cutoffs = sorted({float(c) for c in train.cutoffs})
    return ChurnModels(classifier, regressor, calibration, len(train.churned), cutoffs)


def export_churn(models: ChurnModels, folder: Path, metrics: dict[str, Any]) -> None:
    """churn.onnx, value.onnx and churn.json (features, calibration, metrics)."""
    from skl2onnx import to_onnx

    sample = np.zeros((1, len(FEATURES)), dtype=np.float32)
    with _onnx_ints_not_bools():
        churn = to_onnx(
            models.classifier, sample, options={id(models.classifier): {"zipmap": False}}
        )
        value = to_onnx(models.regressor, sample)
    (folder / ChurnScorer.CHURN_FILE).write_bytes(churn.SerializeToString())
    (folder / ChurnScorer.VALUE_FILE).write_bytes(value.SerializeToString())
    meta = {
        "features": list(FEATURES),
        "calibration": models.calibration,
        "horizon_days": CHURN_HORIZON_DAYS,
        "value_scale": 365 / CHURN_HORIZON_DAYS,  # the regressor predicts 90 days of spend
        "train_rows": models.train_rows,
        "train_cutoffs": models.cutoffs,
        "metrics": metrics,
    }
    (folder / ChurnScorer.META_FILE).write_text(json.dumps(meta, indent=2))


def train_churn_into(folder: Path, events: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """Train on the whole history and export into `folder`; None when the history is
    too short for two snapshots or never shows both outcomes."""
    started = time.perf_counter()
    history = replay(events)
    cutoffs = rolling_cutoffs(history.first, history.last)
    if len(cutoffs) < 2:
        return None
    train = snapshots(history, cutoffs)
    if len(np.unique(train.churned)) < 2:
        return None
    models = fit_churn(train)
    summary = {
        "rows": len(train.churned),
        "cutoffs": len(cutoffs),
        "churn_rate": round(float(train.churned.mean()), 4),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    export_churn(models, folder, summary)
    return summary


@contextmanager
def _onnx_ints_not_bools() -> Iterator[None]:
    """skl2onnx 1.20 hands onnx a list of bools for scikit-learn 1.9's trees (a
    TypeError in `make_attribute`); onnx wants ints. Coerce them during conversion."""
    import onnx.helper

    original = onnx.helper.make_attribute

    def make_attribute(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, list | tuple) and any(isinstance(v, bool | np.bool_) for v in value):
            value = [int(v) for v in value]
        return original(key, value, *args, **kwargs)

    onnx.helper.make_attribute = make_attribute
    try:
        yield
    finally:
        onnx.helper.make_attribute = original


def _merge_histories(into: PersonHistory, other: PersonHistory) -> None:
    for key, order in other.orders.items():
        into.orders.setdefault(key, order)
    for key, at in other.returns.items():
        into.returns.setdefault(key, at)
    for day_key, n in other.days.items():
        into.days[day_key] = into.days.get(day_key, 0) + n
    if other.first_seen is not None:
        into.first_seen = (
            other.first_seen if into.first_seen is None else min(into.first_seen, other.first_seen)
        )

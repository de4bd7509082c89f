"""Churn risk and customer value: one feature function for training and serving.

`churn_features` turns a person's order ledger and daily event counts, as known at a
cutoff, into the models' input row. Training calls it on history replayed up to each
cutoff; the server calls it on the live profile with the cutoff "now"; so the two can
never disagree. Event counts are read in whole days before the cutoff's day (today's
partial count joins tomorrow), which is what makes a mid-day live score and a midnight
training snapshot agree. `ChurnScorer` runs the exported ONNX models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

DAY = 86_400.0
CHURN_HORIZON_DAYS = 90
NO_ORDER_RECENCY_DAYS = 400.0  # recency of someone who never ordered: older than any data
ENGAGEMENT = ("view", "add_to_cart", "email_open", "email_click")
FEATURES = (
    "recency_days", "frequency", "monetary", "average_order_value", "tenure_days",
    "orders_30d", "orders_90d", "orders_180d", "orders_365d", "spend_90d", "spend_365d",
    "interpurchase_mean_days", "interpurchase_std_days", "recency_over_interpurchase",
    "aov_trend", "returns", "last_order_value",
    *(f"{kind}_30d" for kind in ENGAGEMENT),
)  # fmt: skip


class LedgerOrder(Protocol):
    """An order as the ledger holds it (the server's `Order`, training's replay)."""

    @property
    def at(self) -> float: ...
    @property
    def value(self) -> float: ...
    @property
    def returned(self) -> bool: ...


def churn_features(
    orders: Sequence[LedgerOrder],
    counts: Mapping[str, int],
    first_seen: float | None,
    cutoff: float,
) -> npt.NDArray[np.float32]:
    """The feature row at `cutoff`: only orders and whole days before it are looked at.

    `counts` maps "<event type>:<day number>" to that day's events.
    """
    past = sorted((o for o in orders if o.at < cutoff), key=lambda o: o.at)
    kept = [o for o in past if not o.returned]
    values = [o.value for o in kept]
    times = [o.at for o in kept]
    monetary = sum(values)
    aov = monetary / len(kept) if kept else 0.0
    recency = (cutoff - times[-1]) / DAY if times else NO_ORDER_RECENCY_DAYS
    starts = [t for t in (first_seen, times[0] if times else None) if t is not None]
    tenure = (cutoff - min(starts)) / DAY if starts else 0.0
    gaps = np.diff(times) / DAY if len(times) > 1 else np.empty(0)
    gap_mean = float(gaps.mean()) if len(gaps) else 0.0
    recent3 = values[-3:]
    today = int(cutoff // DAY)

    def orders_in(days: int) -> float:
        return float(sum(1 for t in times if cutoff - t <= days * DAY))

    def spend_in(days: int) -> float:
        return float(sum(v for v, t in zip(values, times, strict=True) if cutoff - t <= days * DAY))

    def events_in(kind: str, days: int) -> float:
        return float(sum(counts.get(f"{kind}:{d}", 0) for d in range(today - days, today)))

    row = [
        recency,
        float(len(kept)),
        monetary,
        aov,
        tenure,
        orders_in(30),
        orders_in(90),
        orders_in(180),
        orders_in(365),
        spend_in(90),
        spend_in(365),
        gap_mean,
        float(gaps.std()) if len(gaps) else 0.0,
        recency / gap_mean if gap_mean > 0 else 0.0,
        (sum(recent3) / len(recent3)) / aov if recent3 and aov > 0 else 1.0,
        float(sum(1 for o in past if o.returned)),
        values[-1] if values else 0.0,
        *(events_in(kind, 30) for kind in ENGAGEMENT),
    ]
    return np.asarray(row, dtype=np.float32)


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the trees' log-odds: strictly increasing, so it corrects the
    probabilities without reordering anyone (the ranking, and so the AUC, stay)."""

    slope: float
    intercept: float

    def apply(self, raw: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        clipped = np.clip(raw.astype(np.float64), 1e-6, 1 - 1e-6)
        logit = np.log(clipped / (1 - clipped))
        return (1 / (1 + np.exp(-(self.slope * logit + self.intercept)))).astype(np.float32)


@dataclass(frozen=True)
class ChurnScores:
    churn_risk: float  # probability of no purchase in the next 90 days
    predicted_value: float  # expected spend over the next 12 months


class ChurnScorer:
    """Runs the exported churn classifier and value regressor with onnxruntime."""

    CHURN_FILE = "churn.onnx"
    VALUE_FILE = "value.onnx"
    META_FILE = "churn.json"

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        meta = json.loads((folder / self.META_FILE).read_text())
        if tuple(meta["features"]) != FEATURES:
            raise ValueError("the churn model was trained on other features")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._churn = ort.InferenceSession(str(folder / self.CHURN_FILE), options)
        self._value = ort.InferenceSession(str(folder / self.VALUE_FILE), options)
        self._churn_input = self._churn.get_inputs()[0].name
        self._value_input = self._value.get_inputs()[0].name
        self.calibration = Calibration(**meta["calibration"])
        self.value_scale = float(meta["value_scale"])
        self.metrics: dict[str, float] = meta.get("metrics", {})

    @classmethod
    def in_bundle(cls, folder: Path) -> ChurnScorer | None:
        """The bundle's churn models, if it was trained with them."""
        return cls(folder) if (folder / cls.META_FILE).is_file() else None

    def raw_churn(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The classifier's own probability of churn, before calibration."""
        outputs = self._churn.run(None, {self._churn_input: np.atleast_2d(rows)})
        return np.asarray(outputs[1], dtype=np.float32)[:, 1]

    def raw_value(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The regressor's spend over the label horizon."""
        outputs = self._value.run(None, {self._value_input: np.atleast_2d(rows)})
        return np.asarray(outputs[0], dtype=np.float32).ravel()

    def score(self, row: npt.NDArray[np.float32]) -> ChurnScores:
        rows = np.atleast_2d(row).astype(np.float32)
        risk = float(self.calibration.apply(self.raw_churn(rows))[0])
        value = max(float(self.raw_value(rows)[0]), 0.0) * self.value_scale
        return ChurnScores(round(risk, 4), round(value, 2) if math.isfinite(value) else 0.0)

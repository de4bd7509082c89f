"""How much each behaviour says about taste, and how fast it fades.

Training builds the user-item confidence matrix with these functions and the server
folds a visitor's live clicks in with the very same ones, so the two never disagree.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Relative strength of each event type as implicit feedback. Types absent here
# (search, impressions, email opens, ...) carry no item preference.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "rec_click": 1.0,
    "wishlist_add": 2.0,
    "add_to_cart": 3.0,
    "review": 3.0,
    "purchase": 5.0,
}

RECENCY_HALF_LIFE_DAYS = 60.0
ALPHA = 8.0
SECONDS_PER_DAY = 86_400.0


def recency_decay(
    age_seconds: npt.ArrayLike, half_life_days: float = RECENCY_HALF_LIFE_DAYS
) -> npt.NDArray[np.float32]:
    """Halve an interaction's weight every half-life; future timestamps count as now."""
    age_days = np.maximum(np.asarray(age_seconds, dtype=np.float64), 0.0) / SECONDS_PER_DAY
    return np.power(0.5, age_days / half_life_days).astype(np.float32)


def event_weight(event_type: str) -> float:
    return EVENT_WEIGHTS.get(event_type, 0.0)


def strength(weight_sum: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """How strongly a person is tied to an item: log1p of the summed, decayed weights.

    The log keeps a hundred views of one item from drowning every other signal. Item-item
    models take this as the person's row; ALS turns it into a confidence.
    """
    return np.log1p(np.asarray(weight_sum, dtype=np.float64)).astype(np.float32)


def confidence(weight_sum: npt.ArrayLike, alpha: float = ALPHA) -> npt.NDArray[np.float32]:
    """ALS confidence from summed weights: 1 + alpha * strength, always above one,
    as the implicit-feedback ALS solve expects."""
    return (1.0 + alpha * strength(weight_sum)).astype(np.float32)

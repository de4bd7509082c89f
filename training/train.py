"""Train the recommendation bundle: ALS factors, FAISS indexes, trending, bought-together."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from models.bundle import Bundle, new_version, save_bundle
from models.index import build_index, index_kind, normalise_rows
from models.weights import ALPHA, EVENT_WEIGHTS, RECENCY_HALF_LIFE_DAYS, confidence
from training.datafiles import read_catalog, read_events
from training.interactions import Interactions, bought_together_table, collect_interactions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlsParams:
    factors: int = 64
    regularization: float = 0.05
    iterations: int = 15
    seed: int = 42


def train_bundle(
    events_path: Path, catalog_path: Path, models_dir: Path, params: AlsParams = AlsParams()
) -> Path:
    """Train on the files and write a new bundle under `models_dir`; return its path."""
    started = time.perf_counter()
    items = read_catalog(catalog_path)
    index_of = {item["item_id"]: i for i, item in enumerate(items)}
    data = collect_interactions(read_events(events_path), index_of)
    item_factors, gram = fit_als(data, params)
    indptr, indices, scores = bought_together_table(data.order_items)
    trending = np.argsort(-data.trending_scores, kind="stable")
    trending = trending[data.trending_scores[trending] > 0]
    user_index = build_index(item_factors)
    bundle = Bundle(
        version=new_version(),
        manifest=_manifest(data, params, len(items), index_kind(user_index), started),
        items=items,
        item_factors=item_factors,
        gram=gram,
        trending=trending.astype(np.int64),
        trending_scores=data.trending_scores[trending],
        together_indptr=indptr,
        together_indices=indices,
        together_scores=scores,
        user_index=user_index,
        similar_index=build_index(normalise_rows(item_factors)),
    )
    return save_bundle(bundle, models_dir)


def fit_als(data: Interactions, params: AlsParams) -> tuple[np.ndarray, np.ndarray]:
    """Fit implicit ALS; return item factors and YtY + reg*I for serving-side fold-in."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = data.person_items.copy()
    matrix.data = confidence(matrix.data)
    # implicit parallelises over users itself; a threaded BLAS underneath only fights it.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            iterations=params.iterations,
            alpha=1.0,
            random_state=params.seed,
            calculate_training_loss=False,
        )
        with tqdm(total=params.iterations, desc="fitting ALS", unit="it") as bar:
            model.fit(matrix, show_progress=False, callback=lambda *_: bar.update(1))
    item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    gram = item_factors.T.astype(np.float64) @ item_factors + params.regularization * np.eye(
        params.factors
    )
    return item_factors, gram.astype(np.float32)


def _manifest(
    data: Interactions, params: AlsParams, n_items: int, index: str, started: float
) -> dict[str, Any]:
    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")

    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": "als",
        "params": {
            **asdict(params),
            "alpha": ALPHA,
            "recency_half_life_days": RECENCY_HALF_LIFE_DAYS,
        },
        "event_weights": EVENT_WEIGHTS,
        "index": index,
        "data_range": {"first": iso(data.first_timestamp), "last": iso(data.last_timestamp)},
        "rows": {
            "events": data.events_read,
            "interactions": int(data.person_items.nnz),
            "people": len(data.people),
            "items": n_items,
            "orders_with_pairs": int(data.order_items.shape[0]),
        },
        "metrics": {"train_seconds": round(time.perf_counter() - started, 2)},
    }

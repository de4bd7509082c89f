"""Train the bundle the server serves: pick the model on validation, then fit on everything.

ALS is always fitted, because its item vectors power similar-item search. The model that
ranks personal recommendations (ALS, EASE or item-kNN) is chosen by nDCG@10 on a
validation split carved from the data given, unless one is named; the choice, its
settings and every candidate's validation score are recorded in the manifest. On a large
store the models are compared on a sample of whole people, and the grid search runs on
a smaller one, so that a retrain's time stays bounded as the store grows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from models.bundle import Bundle, SparseRows, new_version, save_bundle
from models.index import build_index, index_kind, normalise_rows
from models.weights import EVENT_WEIGHTS
from training.algorithms import GRIDS, SERVABLE, Fitted, fit_als
from training.churn import train_churn_into
from training.datafiles import read_catalog, read_events
from training.evaluate import Candidate, Heldout, Protocol, fit, score_model, tune
from training.interactions import InteractionLog, bought_together_table, read_log
from training.splits import Split, random_split

log = logging.getLogger(__name__)

EASE_MAX_ITEMS = 10_000  # EASE inverts an items x items matrix (800 MB at 10k)
TUNE_MAX_INTERACTIONS = 2_000_000  # above this, candidates run with default settings
# The grid search fits each model about fifty times: it runs on a sample of whole people
# this large, so that its cost stays a few minutes whatever the store's size.
TUNE_SAMPLE_INTERACTIONS = 250_000
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class TrainOptions:
    model: str = "auto"  # "auto" or one of SERVABLE
    tune: bool = True
    seed: int = 42
    churn: bool = True  # also train the churn and customer-value models
    # Above this many interactions, models are compared on a sample of whole people.
    selection_max_interactions: int = 2_000_000


def train_bundle(
    events_path: Path, catalog_path: Path, models_dir: Path, options: TrainOptions = TrainOptions()
) -> Path:
    """Train on the files and write a new bundle under `models_dir`; return its path."""
    started = time.perf_counter()
    items = read_catalog(catalog_path)
    index_of = {item["item_id"]: i for i, item in enumerate(items)}
    interactions = read_log(read_events(events_path), index_of)
    selection = choose_model(interactions, options)
    chosen, candidates = selection.chosen, selection.candidates
    als_settings = next((c for c in candidates if c.name == "als"), None)
    als = _fit_final_als(interactions, chosen, als_settings)
    ranker = (
        als
        if chosen.name == "als"
        else fit(chosen.name, interactions, chosen.half_life_days, chosen.params)
    )
    bundle = _bundle(items, interactions, als, ranker, selection, started)

    def add_churn(folder: Path) -> dict[str, Any]:
        summary = train_churn_into(folder, read_events(events_path)) if options.churn else None
        return {"churn": summary} if summary else {}

    return save_bundle(bundle, models_dir, add_churn)


@dataclass(frozen=True)
class Selection:
    """The model to serve, every candidate it beat, and what they were compared on."""

    chosen: Candidate
    candidates: list[Candidate]
    # Interactions and people in the sample the models were compared on, and the
    # interactions of the smaller sample the grid search ran on (0: no grid search).
    compared_on: dict[str, int]


def choose_model(interactions: InteractionLog, options: TrainOptions) -> Selection:
    """The servable model that wins on validation (or the one asked for), with its settings."""
    names = list(SERVABLE) if options.model == "auto" else [options.model]
    if interactions.n_items > EASE_MAX_ITEMS and "ease" in names and len(names) > 1:
        names.remove("ease")
    tune_grid = options.tune and len(interactions) <= TUNE_MAX_INTERACTIONS
    if len(names) == 1 and not tune_grid:
        only = Candidate(names[0], GRIDS[names[0]][0], None, float("nan"))
        return Selection(only, [only], {})
    sample = interactions.sample_people(options.selection_max_interactions, options.seed)
    tuning = sample.sample_people(TUNE_SAMPLE_INTERACTIONS, options.seed) if tune_grid else sample
    validation = random_split(tuning, VALIDATION_FRACTION, options.seed)
    protocol = Protocol(tune=tune_grid, seed=options.seed)
    candidates = [tune(name, validation, protocol) for name in tqdm(names, desc="validating")]
    if len(candidates) > 1:
        confirm(candidates, random_split(sample, VALIDATION_FRACTION, options.seed + 1))
    best = max(candidates, key=lambda c: c.confirmed if c.confirmed is not None else c.validation)
    log.info("chose %s (validation nDCG@10 %.4f)", best.name, best.confirmed or best.validation)
    compared_on = {"interactions": len(sample), "people": len(np.unique(sample.people)),
                   "tuned_on_interactions": len(tuning) if tune_grid else 0}  # fmt: skip
    return Selection(best, candidates, compared_on)


def confirm(candidates: list[Candidate], fresh: Split) -> None:
    """Re-score each model's chosen settings on a split its search never saw.

    The best of many trials on one split flatters a model with a bigger grid; a fresh
    split compares the finalists on equal terms.
    """
    heldout = Heldout.from_split(fresh)
    for candidate in candidates:
        fitted = fit(candidate.name, fresh.train, candidate.half_life_days, candidate.params)
        candidate.confirmed = score_model(fitted, heldout, (10,))["ndcg@10"]


def _fit_final_als(
    interactions: InteractionLog, chosen: Candidate, tuned: Candidate | None
) -> Fitted:
    settings = tuned or Candidate("als", GRIDS["als"][0], chosen.half_life_days, float("nan"))
    matrix = interactions.matrix(half_life_days=settings.half_life_days)
    iterations = settings.params.get("iterations", 15)
    with tqdm(total=iterations, desc="fitting ALS", unit="it") as bar:
        return fit_als(matrix, **settings.params, progress=lambda: bar.update(1))


def _bundle(
    items: list[dict[str, Any]],
    interactions: InteractionLog,
    als: Fitted,
    ranker: Fitted,
    selection: Selection,
    started: float,
) -> Bundle:
    assert als.item_factors is not None
    item_factors = als.item_factors
    factors = item_factors.shape[1]
    gram = item_factors.T.astype(np.float64) @ item_factors + als.regularization * np.eye(factors)
    trending_scores = interactions.trending_scores()
    trending = np.argsort(-trending_scores, kind="stable")
    trending = trending[trending_scores[trending] > 0]
    n_items = len(items)
    item_item = SparseRows.empty(n_items)
    if ranker.item_item is not None:
        table = ranker.item_item.tocsr()
        table.sort_indices()
        item_item = SparseRows(
            table.indptr.astype(np.int64),
            table.indices.astype(np.int64),
            table.data.astype(np.float32),
        )
    user_index = build_index(item_factors)
    manifest = _manifest(interactions, als, selection, index_kind(user_index), started)
    return Bundle(
        version=new_version(),
        manifest=manifest,
        items=items,
        item_factors=item_factors,
        gram=gram,
        trending=trending.astype(np.int64),
        trending_scores=trending_scores[trending],
        together=SparseRows(*bought_together_table(interactions.order_items)),
        item_item=item_item,
        user_index=user_index,
        similar_index=build_index(normalise_rows(item_factors)),
    )


def _manifest(
    interactions: InteractionLog,
    als: Fitted,
    selection: Selection,
    index: str,
    started: float,
) -> dict[str, Any]:
    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")

    chosen = selection.chosen
    times = interactions.times
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": chosen.name,
        "serving": {"half_life_days": chosen.half_life_days, "alpha": als.params["alpha"]},
        "params": {chosen.name: chosen.params, "als": als.params},
        "selection": {
            c.name: {
                "validation_ndcg@10": None if np.isnan(c.validation) else round(c.validation, 5),
                "confirmed_ndcg@10": None if c.confirmed is None else round(c.confirmed, 5),
                "params": c.params,
                "half_life_days": c.half_life_days,
            }
            for c in selection.candidates
        },
        "selection_compared_on": selection.compared_on,
        "event_weights": EVENT_WEIGHTS,
        "index": index,
        "data_range": {
            "first": iso(float(times.min())) if len(times) else None,
            "last": iso(float(times.max())) if len(times) else None,
        },
        "rows": {
            "events": interactions.events_read,
            "interactions": len(interactions),
            "people": interactions.n_people,
            "items": interactions.n_items,
            "orders_with_pairs": int(interactions.order_items.shape[0]),
        },
        "metrics": {"train_seconds": round(time.perf_counter() - started, 2)},
    }

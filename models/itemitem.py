"""Scoring a visitor through an item-item table (EASE, item-kNN).

A person's score for item j is the sum over their items i of strength(i) * W[i, j];
training scores a whole matrix row that way, and the server does the same with the
visitor's live, decayed interactions, so a click changes the next answer here too.
Only the seeds' rows are gathered; the best targets are picked by partial sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.bundle import SparseRows

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ItemItemScores:
    targets: IntArray  # best first
    scores: FloatArray
    anchors: IntArray  # per target, the seed that contributed most
    exhausted: bool  # True when every scored target is listed


def score_item_item(
    table: SparseRows, seeds: IntArray, strengths: FloatArray, n_items: int, want: int
) -> ItemItemScores:
    """The `want` best-scored targets for these seeds (fewer if fewer score at all)."""
    owners, targets, values = table.rows(seeds)
    if len(targets) == 0:
        empty = np.empty(0, dtype=np.int64)
        return ItemItemScores(empty, np.empty(0, dtype=np.float32), empty, True)
    contributions = values * strengths[owners]
    totals = np.bincount(targets, weights=contributions, minlength=n_items)
    scored = np.flatnonzero(totals > 0)
    exhausted = len(scored) <= want
    if not exhausted:
        scored = scored[np.argpartition(-totals[scored], want)[:want]]
    best = scored[np.argsort(-totals[scored], kind="stable")]
    return ItemItemScores(
        best,
        totals[best].astype(np.float32),
        _strongest_seed(best, targets, contributions, seeds[owners]),
        exhausted,
    )


def _strongest_seed(
    best: IntArray, targets: IntArray, contributions: FloatArray, seed_of_entry: IntArray
) -> IntArray:
    """For each of `best`, the seed whose row gave it the largest contribution."""
    keep = np.isin(targets, best)
    kept_targets, kept_seeds = targets[keep], seed_of_entry[keep]
    order = np.lexsort((-contributions[keep], kept_targets))  # by target, strongest first
    first_targets, first_positions = np.unique(kept_targets[order], return_index=True)
    strongest = kept_seeds[order][first_positions]
    return strongest[np.searchsorted(first_targets, best)]

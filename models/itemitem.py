"""Scoring a visitor through an item-item table (EASE, item-kNN).

A person's score for item j is the sum over their items i of strength(i) * W[i, j];
training scores a whole matrix row that way, and the server does the same with the
visitor's live, decayed interactions, so a click changes the next answer here too.
Only the seeds' rows are touched: no catalog-sized work per request.
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


def score_item_item(table: SparseRows, seeds: IntArray, strengths: FloatArray) -> ItemItemScores:
    owners, targets, values = table.rows(seeds)
    if len(targets) == 0:
        empty = np.empty(0, dtype=np.int64)
        return ItemItemScores(empty, np.empty(0, dtype=np.float32), empty)
    contributions = values * strengths[owners]
    unique, inverse = np.unique(targets, return_inverse=True)
    totals = np.zeros(len(unique), dtype=np.float32)
    np.add.at(totals, inverse, contributions)
    # The strongest contributor per target: sort by (target, contribution) and take the last.
    order = np.lexsort((contributions, inverse))
    last_of_target = np.r_[np.flatnonzero(np.diff(inverse[order])), len(order) - 1]
    anchors = seeds[owners[order[last_of_target]]]
    best = np.argsort(-totals, kind="stable")
    return ItemItemScores(unique[best], totals[best], anchors[best])

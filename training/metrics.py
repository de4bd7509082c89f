"""Top-k ranking metrics over a hits matrix, as the published tables define them.

`hits[u, r]` is True when the item user u was shown at rank r (0-based) is one of the
user's held-out items; `n_relevant[u]` counts those items. Definitions follow the
Microsoft Recommenders evaluation (the source of the MovieLens figures we compare with):
precision@k = hits / k; recall@k = hits / relevant; nDCG@k with binary gains and the
ideal ranking of min(relevant, k) hits; MAP@k = sum of precision at each hit rank,
divided by the number of relevant items; hit rate@k = share of users with a hit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BoolMatrix = npt.NDArray[np.bool_]
Counts = npt.NDArray[np.int64]


def precision_at_k(hits: BoolMatrix, k: int) -> float:
    return float(hits[:, :k].sum(axis=1).mean() / k)


def recall_at_k(hits: BoolMatrix, n_relevant: Counts, k: int) -> float:
    return float((hits[:, :k].sum(axis=1) / n_relevant).mean())


def ndcg_at_k(hits: BoolMatrix, n_relevant: Counts, k: int) -> float:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts).sum(axis=1)
    ideal_cumulative = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cumulative[np.minimum(n_relevant, k)]
    return float((dcg / idcg).mean())


def map_at_k(hits: BoolMatrix, n_relevant: Counts, k: int) -> float:
    top = hits[:, :k]
    precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, k + 1)
    return float(((precision_at_rank * top).sum(axis=1) / n_relevant).mean())


def hit_rate_at_k(hits: BoolMatrix, k: int) -> float:
    return float(hits[:, :k].any(axis=1).mean())


def coverage_at_k(top_items: npt.NDArray[np.int64], n_items: int, k: int) -> float:
    """Share of the catalog that appears in at least one user's top k."""
    return float(len(np.unique(top_items[:, :k])) / n_items)


def all_metrics(
    hits: BoolMatrix, n_relevant: Counts, top_items: npt.NDArray[np.int64], n_items: int, k: int
) -> dict[str, float]:
    return {
        f"precision@{k}": precision_at_k(hits, k),
        f"recall@{k}": recall_at_k(hits, n_relevant, k),
        f"ndcg@{k}": ndcg_at_k(hits, n_relevant, k),
        f"map@{k}": map_at_k(hits, n_relevant, k),
        f"hit_rate@{k}": hit_rate_at_k(hits, k),
        f"coverage@{k}": coverage_at_k(top_items, n_items, k),
    }

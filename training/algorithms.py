"""The recommenders we train and compare, fitted on a person x item weight matrix.

Every algorithm turns the same weighted matrix into scores for all items, so the
evaluation harness treats them alike. ALS, EASE and item-kNN can be served (ALS folds a
visitor in; EASE and item-kNN score the visitor's live items through an item-item
table); most-popular and BPR are baselines for the offline comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from models.weights import ALPHA, confidence, strength
from training.interactions import top_per_row

FloatMatrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
SERVABLE = ("als", "ease", "itemknn")
ITEM_ITEM_NEIGHBOURS = 200


@dataclass
class Fitted:
    """A trained model: scores people's rows of the matrix it was fitted on."""

    name: str
    params: dict[str, Any]
    rows: sp.csr_matrix  # the fitted matrix's person rows, as the model reads them
    user_factors: FloatMatrix | None = None
    item_factors: FloatMatrix | None = None
    item_item: sp.csr_matrix | None = None
    popularity: FloatMatrix | None = None
    regularization: float = 0.0

    def scores(self, people: IntArray) -> FloatMatrix:
        if self.item_item is not None:
            return np.asarray((self.rows[people] @ self.item_item).todense(), dtype=np.float32)
        if self.user_factors is not None and self.item_factors is not None:
            return (self.user_factors[people] @ self.item_factors.T).astype(np.float32)
        assert self.popularity is not None
        return np.broadcast_to(self.popularity, (len(people), len(self.popularity))).copy()


def fit_popular(weights: sp.csr_matrix, **_: Any) -> Fitted:
    popularity = np.asarray((weights > 0).sum(axis=0), dtype=np.float32).ravel()
    return Fitted("popular", {}, weights, popularity=popularity)


def fit_itemknn(weights: sp.csr_matrix, neighbours: int = 100, shrink: float = 10.0) -> Fitted:
    """Cosine similarity of items' co-occurrence, each item keeping its nearest neighbours."""
    present = (weights > 0).astype(np.float32).tocsc()
    co = (present.T @ present).tocoo()
    norms = np.sqrt(np.asarray(present.sum(axis=0)).ravel())
    keep = co.row != co.col
    row, col = co.row[keep], co.col[keep]
    similarity = co.data[keep] / (norms[row] * norms[col] + shrink)
    table = sp.csr_matrix((similarity.astype(np.float32), (row, col)), shape=co.shape)
    item_item = _csr(*top_per_row(table, neighbours), table.shape)
    rows = _strength_rows(weights)
    params = {"neighbours": neighbours, "shrink": shrink}
    return Fitted("itemknn", params, rows, item_item=item_item)


def fit_ease(weights: sp.csr_matrix, l2: float = 200.0) -> Fitted:
    """EASE (Steck 2019): the closed-form item-item regression with a zero diagonal."""
    rows = _strength_rows(weights)
    with threadpool_limits(2, "blas"):
        gram = (rows.T @ rows).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += l2
        inverse = np.linalg.inv(gram)
    coefficients = -inverse / np.diag(inverse)
    np.fill_diagonal(coefficients, 0.0)
    item_item = _dense_top_per_row(coefficients.astype(np.float32), ITEM_ITEM_NEIGHBOURS)
    return Fitted("ease", {"l2": l2}, rows, item_item=item_item)


def fit_als(
    weights: sp.csr_matrix,
    factors: int = 64,
    regularization: float = 0.05,
    alpha: float = ALPHA,
    iterations: int = 15,
    seed: int = 42,
    progress: Callable[[], None] | None = None,
) -> Fitted:
    """Implicit-feedback ALS on confidences 1 + alpha * log1p(weight)."""
    from implicit.cpu.als import AlternatingLeastSquares

    rows = weights.copy()
    rows.data = confidence(rows.data, alpha)
    with threadpool_limits(1, "blas"):  # implicit parallelises itself; BLAS threads fight it
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=1.0,
            iterations=iterations,
            random_state=seed,
            calculate_training_loss=False,
        )
        model.fit(rows, show_progress=False, callback=(lambda *_: progress()) if progress else None)
    params = {"factors": factors, "regularization": regularization, "alpha": alpha,
              "iterations": iterations}  # fmt: skip
    return Fitted(
        "als",
        params,
        rows,
        user_factors=np.asarray(model.user_factors, dtype=np.float32),
        item_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
        regularization=regularization,
    )


def fit_bpr(
    weights: sp.csr_matrix,
    factors: int = 64,
    learning_rate: float = 0.05,
    regularization: float = 0.01,
    iterations: int = 100,
    seed: int = 42,
) -> Fitted:
    """Bayesian personalised ranking from implicit (a baseline: it has no fold-in to serve)."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    present = (weights > 0).astype(np.float32).tocsr()
    with threadpool_limits(1, "blas"):
        model = BayesianPersonalizedRanking(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            random_state=seed,
        )
        model.fit(present, show_progress=False)
    params = {"factors": factors, "learning_rate": learning_rate,
              "regularization": regularization, "iterations": iterations}  # fmt: skip
    return Fitted(
        "bpr",
        params,
        present,
        user_factors=np.asarray(model.user_factors, dtype=np.float32),
        item_factors=np.asarray(model.item_factors, dtype=np.float32),
    )


FITTERS: dict[str, Callable[..., Fitted]] = {
    "popular": fit_popular,
    "itemknn": fit_itemknn,
    "ease": fit_ease,
    "als": fit_als,
    "bpr": fit_bpr,
}

# Hyper-parameters searched on the validation split; the first entry is the default.
GRIDS: dict[str, list[dict[str, Any]]] = {
    "popular": [{}],
    "itemknn": [{"neighbours": n, "shrink": s} for n in (50, 100, 200) for s in (0.0, 10.0)],
    "ease": [{"l2": v} for v in (400.0, 100.0, 200.0, 800.0, 1600.0, 3200.0, 6400.0)],
    "als": [
        {"factors": f, "regularization": r, "alpha": a}
        for f in (64, 128)
        for r in (10.0, 1.0, 50.0, 150.0)
        for a in (8.0, 2.0, 20.0)
    ],
    # implicit's BPR overfits with many epochs: short runs at small steps do best.
    "bpr": [
        {"factors": f, "learning_rate": lr, "iterations": n}
        for f in (128, 64)
        for lr, n in ((0.005, 100), (0.01, 50), (0.005, 50))
    ],
}


def _strength_rows(weights: sp.csr_matrix) -> sp.csr_matrix:
    rows = weights.copy().astype(np.float32)
    rows.data = strength(rows.data)
    return rows


def _csr(
    indptr: IntArray, indices: IntArray, values: FloatMatrix, shape: tuple[int, int]
) -> sp.csr_matrix:
    return sp.csr_matrix((values, indices, indptr), shape=shape)


def _dense_top_per_row(matrix: FloatMatrix, keep: int) -> sp.csr_matrix:
    """Sparsify a dense item-item matrix to each row's `keep` largest entries."""
    n = matrix.shape[0]
    keep = min(keep, n - 1)
    columns = np.argpartition(-matrix, keep, axis=1)[:, :keep]
    values = np.take_along_axis(matrix, columns, axis=1)
    positive = values > 0
    rows = np.repeat(np.arange(n), keep).reshape(n, keep)
    return sp.csr_matrix((values[positive], (rows[positive], columns[positive])), shape=(n, n))

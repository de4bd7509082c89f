"""The shared model code: fold-in maths, bundle format and ranking rules."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from models.bundle import Bundle, load_bundle, newest_bundle_path, save_bundle
from models.catalog import CatalogView
from models.foldin import aggregate_interactions, fold_in_user
from models.index import (
    EXACT_INDEX_MAX_ITEMS,
    build_index,
    index_kind,
    load_index,
    save_index,
    search,
)
from models.recommend import Filters, Interaction, Recommender, VisitorHistory
from models.weights import confidence, recency_decay


def test_fold_in_matches_implicits_own_user_solve() -> None:
    rng = np.random.default_rng(3)
    weights = sp.random(200, 120, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    weights.data = confidence(weights.data * 5)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=16, regularization=0.1, iterations=4, random_state=1
        )
        model.fit(weights, show_progress=False)
    factors = model.item_factors
    gram = factors.T.astype(np.float64) @ factors + 0.1 * np.eye(16)
    for user in (0, 17, 111):
        row = weights[user]
        expected = model.recalculate_user(0, row)
        ours = fold_in_user(gram, factors, row.indices.astype(np.int64), row.data)
        np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-4)


def test_fold_in_without_regularisation_still_answers() -> None:
    """Two identical item vectors and no regularisation: the system is singular, which
    the Cholesky solve refuses; the visitor still gets the least-squares vector."""
    factors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    gram = np.zeros((2, 2))
    vector = fold_in_user(gram, factors, np.array([0, 1]), np.array([2.0, 2.0], np.float32))
    assert np.all(np.isfinite(vector))
    assert vector[0] > 0 and vector[1] == 0


def test_recency_halves_weight_every_half_life() -> None:
    day = 86_400.0
    decay = recency_decay([0.0, 60 * day, 120 * day, -5 * day])
    np.testing.assert_allclose(decay, [1.0, 0.5, 0.25, 1.0], rtol=1e-6)


def test_bundles_round_trip_and_the_newest_complete_one_wins(
    bundle: Bundle, tmp_path: Path
) -> None:
    first = save_bundle(bundle, tmp_path)
    loaded = load_bundle(first)
    np.testing.assert_array_equal(loaded.item_factors, bundle.item_factors)
    assert loaded.items == bundle.items
    assert loaded.manifest["rows"] == bundle.manifest["rows"]
    (tmp_path / ".staging-99999999T999999999999Z-000000").mkdir()
    assert newest_bundle_path(tmp_path) == first


def test_ranking_drops_unavailable_blocked_and_filtered_items(bundle: Bundle) -> None:
    view = CatalogView.from_items(bundle.items)
    recommender = Recommender(bundle, view)
    now = time.time()
    history = VisitorHistory(
        interactions=[Interaction(bundle.items[i]["item_id"], "view", now) for i in (0, 1, 2)],
        purchased=frozenset({bundle.items[5]["item_id"]}),
    )
    baseline = recommender.personal(history, Filters(), 20, now)
    top = baseline[0].index
    view.update(top, {"in_stock": False})
    excluded = bundle.items[baseline[1].index]["item_id"]
    ranked = recommender.personal(history, Filters(exclude=frozenset({excluded})), 20, now)
    indices = {r.index for r in ranked}
    assert len(ranked) == 20
    assert top not in indices and baseline[1].index not in indices
    assert not indices & {0, 1, 2, 5}
    assert all(view.available[i] for i in indices)
    category = bundle.items[0]["category"]
    only = recommender.personal(history, Filters(category=category), 10, now)
    assert {view.category(r.index) for r in only} == {category}


def test_item_item_scoring_matches_a_dense_sum() -> None:
    import scipy.sparse as sp

    from models.bundle import SparseRows
    from models.itemitem import score_item_item

    rng = np.random.default_rng(5)
    table = sp.random(50, 50, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    rows = SparseRows(table.indptr.astype(np.int64), table.indices.astype(np.int64), table.data)
    seeds = np.array([3, 7, 11], dtype=np.int64)
    strengths = np.array([1.0, 0.5, 2.0], dtype=np.float32)
    dense = table.toarray()
    expected = strengths @ dense[seeds]
    scored = score_item_item(rows, seeds, strengths, 50, want=10)
    assert len(scored.targets) == 10 and not scored.exhausted
    np.testing.assert_array_equal(scored.targets, np.argsort(-expected, kind="stable")[:10])
    np.testing.assert_allclose(scored.scores, expected[scored.targets], rtol=1e-5)
    for target, anchor in zip(scored.targets, scored.anchors, strict=True):
        assert anchor == seeds[np.argmax(strengths * dense[seeds, target])]
    assert score_item_item(rows, seeds, strengths, 50, want=500).exhausted


def test_repeated_interactions_sum_and_non_positive_totals_drop() -> None:
    indices = np.array([5, 3, 5, 7, 0, 7], dtype=np.int64)
    weights = np.array([1.0, 2.0, 3.0, 0.5, -1.0, -0.5], dtype=np.float32)
    items, totals = aggregate_interactions(indices, weights)
    assert items.tolist() == [3, 5]
    assert totals.tolist() == [2.0, 4.0]
    assert totals.dtype == np.float32 and items.dtype == np.int64


def test_a_large_catalog_gets_a_graph_that_finds_what_exact_search_finds(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((EXACT_INDEX_MAX_ITEMS + 1, 16)).astype(np.float32)
    graph = build_index(vectors)
    save_index(graph, tmp_path / "graph.faiss")
    loaded = load_index(tmp_path / "graph.faiss")
    queries = vectors[rng.choice(len(vectors), 50, replace=False)] + 0.1
    found = 0
    for query in queries:
        best = np.argsort(-(vectors @ query))[:10]
        ids, scores = search(loaded, query, 10)
        found += len(set(ids.tolist()) & set(best.tolist()))
        assert np.allclose(scores, vectors[ids] @ query, rtol=1e-2, atol=1e-2)
    assert index_kind(loaded) == "hnsw" and index_kind(build_index(vectors[:100])) == "exact"
    assert found / (10 * len(queries)) >= 0.95

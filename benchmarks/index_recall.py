"""How close the bundle's nearest-neighbour index comes to exact search, and how fast.

For each trained bundle given, takes the item vectors it was trained on, draws visitor-
like queries (a blend of a few popular items' vectors, as the fold-in produces), and
compares the bundle's user-to-item index with exact inner-product search over the same
vectors: recall@10 and time per query. Bundles of 50,000 items or fewer carry an exact
index (recall 1 by construction); larger ones an HNSW graph.

    .venv/bin/python benchmarks/index_recall.py var/bench/models-100000 var/bench/models-1000000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from models.bundle import Bundle, load_bundle, newest_bundle_path
from models.index import HNSW_EF_SEARCH, index_kind

K = 10


def queries(bundle: Bundle, n: int, seed: int = 7) -> npt.NDArray[np.float32]:
    """Each query the mean of 1-5 item vectors drawn by popularity (trending scores):
    a visitor with a few clicks on the items visitors click."""
    rng = np.random.default_rng(seed)
    weights = np.asarray(bundle.trending_scores, dtype=np.float64)
    weights = weights / weights.sum()
    vectors = bundle.item_factors
    rows = [
        vectors[rng.choice(bundle.trending, size=rng.integers(1, 6), p=weights)].mean(axis=0)
        for _ in range(n)
    ]
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def timed_search(
    index: faiss.Index, asked: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.int64], float]:
    """Top-K ids per query, asked one at a time as the server does; ms per query."""
    found = np.empty((len(asked), K), dtype=np.int64)
    started = time.perf_counter()
    for row, query in enumerate(asked):
        _, ids = index.search(query.reshape(1, -1), K)
        found[row] = ids[0]
    return found, (time.perf_counter() - started) * 1000 / len(asked)


def measure(models: Path, n_queries: int, ef_search: int) -> dict[str, float | int | str]:
    path = newest_bundle_path(models)
    if path is None:
        raise SystemExit(f"no bundle under {models}")
    bundle = load_bundle(path)
    if isinstance(bundle.user_index, faiss.IndexHNSW):
        bundle.user_index.hnsw.efSearch = ef_search
    vectors = np.ascontiguousarray(bundle.item_factors, dtype=np.float32)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    asked = queries(bundle, n_queries)
    truth, exact_ms = timed_search(exact, asked)
    got, index_ms = timed_search(bundle.user_index, asked)
    hits = sum(len(set(a) & set(b)) for a, b in zip(got.tolist(), truth.tolist(), strict=True))
    return {
        "items": len(vectors),
        "index": index_kind(bundle.user_index),
        "ef_search": ef_search if index_kind(bundle.user_index) == "hnsw" else 0,
        "recall_at_10": hits / (K * len(asked)),
        "index_ms_per_query": index_ms,
        "exact_ms_per_query": exact_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", type=Path, nargs="+", help="MODELS_DIR folders")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--ef-search",
        type=int,
        nargs="+",
        default=[HNSW_EF_SEARCH],
        help="HNSW candidate list lengths to try (the served one by default)",
    )
    parser.add_argument("--out", type=Path, default=Path("var/bench/index_recall.json"))
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # one request, one thread: as served
    rows = [measure(models, args.queries, ef) for models in args.models for ef in args.ef_search]
    print(f"{'items':>10} {'index':>6} {'ef':>4} {'recall@10':>10} {'ms/query':>9} {'exact ms':>9}")
    for row in rows:
        print(f"{row['items']:>10,} {row['index']:>6} {row['ef_search']:>4} "
              f"{row['recall_at_10']:>10.3f} {row['index_ms_per_query']:>9.3f} "
              f"{row['exact_ms_per_query']:>9.3f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

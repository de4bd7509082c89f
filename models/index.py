"""Nearest-neighbour search over item vectors with FAISS.

Exact inner-product search is fastest and perfect below a few tens of thousands of
items; above that an HNSW graph answers in a fraction of a millisecond. The bundle
records which one it built so the server needs no configuration.

The graph keeps its vectors in half precision. A search walks scattered vectors and is
bound by memory, not arithmetic: at 100k and 1M items fp16 vectors searched 15-20%
faster than float32 ones, recall@10 against exact search stayed where it was (0.989 and
0.988 at efSearch 64, benchmarks/index_recall.py), and the vectors take half the memory
(docs/performance.md).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

EXACT_INDEX_MAX_ITEMS = 50_000
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 64  # recall@10 0.99 at 100k and 1M items (benchmarks/index_recall.py)


def build_index(vectors: npt.NDArray[np.float32]) -> faiss.Index:
    """An inner-product index over `vectors`, exact or HNSW by catalog size."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if len(vectors) <= EXACT_INDEX_MAX_ITEMS:
        exact = faiss.IndexFlatIP(dim)
        exact.add(vectors)
        return exact
    graph = faiss.IndexHNSWSQ(
        dim,
        faiss.ScalarQuantizer.QT_fp16,  # type: ignore[arg-type]  # an enum int; the stub wants a class
        HNSW_NEIGHBOURS,
        faiss.METRIC_INNER_PRODUCT,
    )
    graph.hnsw.efConstruction = 80
    graph.hnsw.efSearch = HNSW_EF_SEARCH
    graph.train(vectors)  # fp16 learns nothing, but faiss wants every quantizer trained
    graph.add(vectors)
    return graph


def index_kind(index: faiss.Index) -> str:
    return "hnsw" if isinstance(index, faiss.IndexHNSW) else "exact"


def search(
    index: faiss.Index, query: npt.NDArray[np.float32], n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The top `n` items by inner product with `query`, best first, without padding."""
    n = min(n, index.ntotal)
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    scores, ids = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), n)
    valid = ids[0] >= 0
    return ids[0][valid].astype(np.int64), scores[0][valid]


def save_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_index(path: Path) -> faiss.Index:
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexHNSW):  # float32 graphs of older bundles too
        index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def normalise_rows(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Unit-length rows, so inner product is cosine similarity; zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

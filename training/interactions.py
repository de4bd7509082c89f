"""From an event stream to the matrices training needs.

One pass over the events collects, per (person, item), the summed, recency-decayed
weight (the ALS input), per item a recency-weighted popularity (trending), and per
order its items (bought-together). A person is the customer when the event names one,
else the visitor, just as the server resolves identities.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from tqdm import tqdm

from models.weights import SECONDS_PER_DAY, event_weight, recency_decay
from training.datafiles import parse_timestamp

TRENDING_HALF_LIFE_DAYS = 7.0


@dataclass
class Interactions:
    person_items: sp.csr_matrix  # summed decayed weights, people x items
    people: list[str]
    trending_scores: npt.NDArray[np.float32]
    order_items: sp.csr_matrix  # orders x items, 1 where the item was in the order
    events_read: int
    first_timestamp: float
    last_timestamp: float


class _Collector:
    def __init__(self, index_of: dict[str, int]) -> None:
        self.index_of = index_of
        self.person_of: dict[str, int] = {}
        self.customer_of: dict[str, str] = {}  # visitor id -> the customer it became
        # Typed arrays, not lists: ten million interactions stay a few hundred MB.
        self.rows = array("q")
        self.cols = array("q")
        self.weights = array("f")
        self.times = array("d")
        self.order_rows = array("q")
        self.order_cols = array("q")
        self.orders = 0
        self.events = 0

    def add(self, event: dict[str, Any]) -> None:
        self.events += 1
        if event.get("customer_id"):
            self.customer_of.setdefault(event["visitor_id"], event["customer_id"])
        weight = event_weight(event.get("type", ""))
        if weight <= 0:
            return
        items = _item_ids(event)
        known = [self.index_of[i] for i in items if i in self.index_of]
        if not known:
            return
        person_id = event.get("customer_id") or event["visitor_id"]
        person = self.person_of.setdefault(person_id, len(self.person_of))
        at = parse_timestamp(event["timestamp"])
        for item in known:
            self.rows.append(person)
            self.cols.append(item)
            self.weights.append(weight)
            self.times.append(at)
        if event["type"] == "purchase" and len(known) > 1:
            self.order_rows.extend(array("q", [self.orders] * len(known)))
            self.order_cols.extend(known)
            self.orders += 1

    def merged_people(self) -> tuple[list[str], npt.NDArray[np.int64]]:
        """Fold each linked visitor's rows into its customer, as the server merges them."""
        canonical: dict[str, int] = {}
        remap = np.empty(len(self.person_of), dtype=np.int64)
        for person_id, row in self.person_of.items():
            target = self.customer_of.get(person_id, person_id)
            remap[row] = canonical.setdefault(target, len(canonical))
        return list(canonical), remap


def collect_interactions(
    events: Iterable[dict[str, Any]], index_of: dict[str, int], now: float | None = None
) -> Interactions:
    """Build the weighted person-item matrix; recency is measured from `now` or the last event."""
    collector = _Collector(index_of)
    for event in tqdm(events, desc="reading events", unit="ev", unit_scale=True):
        collector.add(event)
    n_items = len(index_of)
    times = np.frombuffer(collector.times, dtype=np.float64)
    cols = np.frombuffer(collector.cols, dtype=np.int64)
    reference = now if now is not None else (float(times.max()) if len(times) else 0.0)
    base = np.frombuffer(collector.weights, dtype=np.float32)
    decayed = base * recency_decay(reference - times)
    people, remap = collector.merged_people()
    rows = remap[np.frombuffer(collector.rows, dtype=np.int64)]
    matrix = sp.csr_matrix((decayed, (rows, cols)), shape=(len(people), n_items), dtype=np.float32)
    matrix.sum_duplicates()
    trending_decay = np.power(
        0.5, np.maximum(reference - times, 0) / (TRENDING_HALF_LIFE_DAYS * SECONDS_PER_DAY)
    )
    trending = np.bincount(cols, weights=base * trending_decay, minlength=n_items)
    orders = sp.csr_matrix(
        (
            np.ones(len(collector.order_rows), dtype=np.float32),
            (
                np.frombuffer(collector.order_rows, np.int64),
                np.frombuffer(collector.order_cols, np.int64),
            ),
        ),
        shape=(collector.orders, n_items),
    )
    orders.data[:] = 1.0
    return Interactions(
        person_items=matrix,
        people=people,
        trending_scores=trending.astype(np.float32),
        order_items=orders,
        events_read=collector.events,
        first_timestamp=float(times.min()) if len(times) else 0.0,
        last_timestamp=float(times.max()) if len(times) else 0.0,
    )


def bought_together_table(
    order_items: sp.csr_matrix, top_n: int = 20
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Per item, the items most often in the same order, scored by co-purchase cosine."""
    order_items = order_items.copy()
    order_items.data[:] = 1.0
    counts = np.asarray(order_items.sum(axis=0)).ravel()
    co = (order_items.T @ order_items).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    co = co.tocoo()
    scores = co.data / np.sqrt(counts[co.row] * counts[co.col])
    table = sp.csr_matrix((scores.astype(np.float32), (co.row, co.col)), shape=co.shape)
    indptr = [0]
    indices: list[npt.NDArray[np.int32]] = []
    values: list[npt.NDArray[np.float32]] = []
    for row in range(table.shape[0]):
        start, end = table.indptr[row], table.indptr[row + 1]
        row_scores = table.data[start:end]
        best = np.argsort(-row_scores, kind="stable")[:top_n]
        indices.append(table.indices[start:end][best])
        values.append(row_scores[best])
        indptr.append(indptr[-1] + len(best))
    return (
        np.asarray(indptr, dtype=np.int64),
        np.concatenate(indices).astype(np.int64) if indices else np.empty(0, np.int64),
        np.concatenate(values).astype(np.float32) if values else np.empty(0, np.float32),
    )


def _item_ids(event: dict[str, Any]) -> list[str]:
    if event.get("items"):
        return [line["item_id"] for line in event["items"]]
    item_id = event.get("item_id")
    return [item_id] if item_id else []

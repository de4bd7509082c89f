"""From an event stream to the interaction log and matrices training needs.

One pass over the events collects every weighted interaction with its time (the log),
and the items of each multi-item order. The log can be split by user or by time for
evaluation; a split is then turned into the person x item matrix of summed,
recency-decayed weights that every model trains on. A person is the customer when the
event names one, else the visitor, merged as the server merges identities.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from tqdm import tqdm

from models.weights import event_weight, recency_decay
from state.keys import customer_person, visitor_of, visitor_person
from training.datafiles import parse_timestamp

TRENDING_HALF_LIFE_DAYS = 7.0

IntArray = npt.NDArray[np.int64]
T = TypeVar("T")


@dataclass
class InteractionLog:
    """Every weighted interaction, one row each, aligned arrays."""

    people: IntArray
    items: IntArray
    weights: npt.NDArray[np.float32]  # by event type, before recency
    times: npt.NDArray[np.float64]  # seconds since the epoch
    person_ids: list[str]
    n_items: int
    order_items: sp.csr_matrix  # orders x items, 1 where the item was in the order
    events_read: int

    def __len__(self) -> int:
        return len(self.people)

    @property
    def n_people(self) -> int:
        return len(self.person_ids)

    def subset(self, mask: npt.NDArray[np.bool_]) -> InteractionLog:
        """The rows where `mask` holds, with the same people and items.

        Orders are not carried over: they have no rows to mask, and keeping them would let
        a held-out part leak into anything computed from a training subset.
        """
        return InteractionLog(
            self.people[mask],
            self.items[mask],
            self.weights[mask],
            self.times[mask],
            self.person_ids,
            self.n_items,
            sp.csr_matrix((0, self.n_items), dtype=np.float32),
            self.events_read,
        )

    def sample_people(self, max_rows: int, seed: int) -> InteractionLog:
        """Whole people, drawn at random, whose rows come to at most `max_rows`,
        renumbered so that the sample's matrices have their rows only.

        Model selection compares models, which a representative sample does as well as
        the whole log; sampling people rather than rows keeps each history intact, so the
        validation split still hides part of every sampled person's items. Someone with
        more rows than the whole budget is passed over rather than ending the draw.
        """
        if len(self) <= max_rows:
            return self
        rows_per_person = np.bincount(self.people, minlength=self.n_people)
        order = np.random.default_rng(seed).permutation(self.n_people)
        order = order[rows_per_person[order] <= max_rows]
        fits = np.searchsorted(np.cumsum(rows_per_person[order]), max_rows, side="right")
        kept = np.sort(order[:fits])
        renumbered = np.full(self.n_people, -1, dtype=np.int64)
        renumbered[kept] = np.arange(len(kept))
        sample = self.subset(renumbered[self.people] >= 0)
        sample.people = renumbered[sample.people]
        sample.person_ids = [self.person_ids[i] for i in kept]
        return sample

    def matrix(
        self, reference: float | None = None, half_life_days: float | None = None
    ) -> sp.csr_matrix:
        """People x items, summed weights decayed by age at `reference` (default: last row)."""
        weights = self.weights
        if half_life_days is not None and len(self):
            end = reference if reference is not None else float(self.times.max())
            weights = weights * recency_decay(end - self.times, half_life_days)
        matrix = sp.csr_matrix(
            (weights, (self.people, self.items)),
            shape=(self.n_people, self.n_items),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        return matrix

    def trending_scores(self) -> npt.NDArray[np.float32]:
        """Per item, weights decayed with a one-week half-life from the last interaction."""
        if not len(self):
            return np.zeros(self.n_items, dtype=np.float32)
        decay = recency_decay(float(self.times.max()) - self.times, TRENDING_HALF_LIFE_DAYS)
        return np.bincount(self.items, self.weights * decay, self.n_items).astype(np.float32)


class Identities:
    """People as the server links them: a visitor's anonymous history merges into the
    first customer it is linked to, and its later events follow its latest link."""

    def __init__(self) -> None:
        self.first_link: dict[str, str] = {}
        self.latest_link: dict[str, str] = {}

    def person_of(self, event: dict[str, Any]) -> str:
        """The person this event belongs to, noting any link it makes."""
        visitor, customer = event["visitor_id"], event.get("customer_id")
        if customer:
            self.first_link.setdefault(visitor, customer)
            self.latest_link[visitor] = customer
        linked = customer or self.latest_link.get(visitor)
        return customer_person(linked) if linked else visitor_person(visitor)

    def canonical(self, person: str) -> str:
        """Where a person's rows end up: an anonymous visitor's go to its first customer."""
        visitor = visitor_of(person)
        customer = self.first_link.get(visitor) if visitor is not None else None
        return customer_person(customer) if customer is not None else person

    def merge(self, people: dict[str, T], combine: Callable[[T, T], None]) -> dict[str, T]:
        """Fold each person's value into its canonical person's with `combine`."""
        merged: dict[str, T] = {}
        for person, value in people.items():
            target = self.canonical(person)
            if target in merged:
                combine(merged[target], value)
            else:
                merged[target] = value
        return merged


class _Collector:
    def __init__(self, index_of: dict[str, int]) -> None:
        self.index_of = index_of
        self.person_of: dict[str, int] = {}
        self.identities = Identities()
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
        person_id = self.identities.person_of(event)
        weight = event_weight(event.get("type", ""))
        if weight <= 0:
            return
        known = [self.index_of[i] for i in _item_ids(event) if i in self.index_of]
        if not known:
            return
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

    def log(self) -> InteractionLog:
        people, remap = self._merged_people()
        orders = sp.csr_matrix(
            (
                np.ones(len(self.order_rows), dtype=np.float32),
                (
                    np.frombuffer(self.order_rows, np.int64),
                    np.frombuffer(self.order_cols, np.int64),
                ),
            ),
            shape=(self.orders, len(self.index_of)),
        )
        orders.data[:] = 1.0
        return InteractionLog(
            people=remap[np.frombuffer(self.rows, dtype=np.int64)],
            items=np.frombuffer(self.cols, dtype=np.int64).copy(),
            weights=np.frombuffer(self.weights, dtype=np.float32).copy(),
            times=np.frombuffer(self.times, dtype=np.float64).copy(),
            person_ids=people,
            n_items=len(self.index_of),
            order_items=orders,
            events_read=self.events,
        )

    def _merged_people(self) -> tuple[list[str], IntArray]:
        """Fold each linked visitor's rows into its customer, as the server merges them."""
        canonical: dict[str, int] = {}
        remap = np.empty(len(self.person_of), dtype=np.int64)
        for person_id, row in self.person_of.items():
            target = self.identities.canonical(person_id)
            remap[row] = canonical.setdefault(target, len(canonical))
        return list(canonical), remap


def read_log(events: Iterable[dict[str, Any]], index_of: dict[str, int]) -> InteractionLog:
    """One pass over the events, with a progress bar."""
    collector = _Collector(index_of)
    for event in tqdm(events, desc="reading events", unit="ev", unit_scale=True):
        collector.add(event)
    return collector.log()


def bought_together_table(
    order_items: sp.csr_matrix, top_n: int = 20
) -> tuple[IntArray, IntArray, npt.NDArray[np.float32]]:
    """Per item, the items most often in the same orders, scored by co-purchase cosine."""
    order_items = order_items.copy()
    order_items.data[:] = 1.0
    counts = np.asarray(order_items.sum(axis=0)).ravel()
    co = (order_items.T @ order_items).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    co = co.tocoo()
    scores = co.data / np.sqrt(counts[co.row] * counts[co.col])
    table = sp.csr_matrix((scores.astype(np.float32), (co.row, co.col)), shape=co.shape)
    return top_per_row(table, top_n)


def top_per_row(
    table: sp.csr_matrix, top_n: int
) -> tuple[IntArray, IntArray, npt.NDArray[np.float32]]:
    """CSR arrays keeping each row's `top_n` largest entries, best first."""
    table = table.tocsr()
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

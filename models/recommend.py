"""Ranking: from a visitor's live history to a list of items with reasons.

Everything here is a function of plain data (the bundle, the catalog view and what the
visitor did), so the same code serves API requests and can be tested without Redis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.bundle import Bundle
from models.catalog import CatalogView
from models.foldin import aggregate_interactions, fold_in_user
from models.history import Interaction, VisitorHistory
from models.index import search
from models.itemitem import score_item_item
from models.weights import confidence, event_weight, recency_decay, strength

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

SET_LOOKUP_MAX = 1024  # candidates checked against the blocked set one by one, up to this

VERBS = {
    "view": "viewed",
    "rec_click": "viewed",
    "wishlist_add": "wished for",
    "add_to_cart": "added to your cart",
    "review": "reviewed",
    "purchase": "bought",
}


@dataclass(frozen=True)
class Filters:
    """Request-level constraints on what may be recommended."""

    category: str | None = None
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Recommended:
    index: int
    score: float
    reason: str


@dataclass
class Recommender:
    """Ranks bundle items for a request against the live catalog view."""

    bundle: Bundle
    catalog: CatalogView
    replenishable: frozenset[str] = frozenset()  # categories bought again and again
    exclude_purchased: bool = True
    max_candidates: int = field(default=4096)

    # -- public rankings ---------------------------------------------------------------

    def personal(
        self, history: VisitorHistory, filters: Filters, limit: int, now: float
    ) -> list[Recommended]:
        """Recommended-for-you: the visitor's folded-in taste, else trending."""
        seeds, weights = self._seeds(history, now)
        if len(seeds) == 0:
            return self.trending(filters, limit, blocked=self._blocked(history, filters))
        # What the visitor already touched is not news, except a replenishable purchase.
        bought, rebuyable = self._purchases(history)
        excluded = self._excluded(filters) | (bought - rebuyable)
        blocked = excluded | (set(seeds.tolist()) - rebuyable)
        if self.bundle.item_item.is_empty:
            results = self._personal_als(history, seeds, weights, filters, limit, blocked)
        else:
            results = self._personal_item_item(history, seeds, weights, filters, limit, blocked)
        return self._backfill(results, filters, limit, blocked)

    def similar(
        self, item_index: int, filters: Filters, limit: int, history: VisitorHistory | None = None
    ) -> list[Recommended]:
        """Items whose learned vectors point the same way as this one's."""
        blocked = self._blocked(history or VisitorHistory(), filters) | {item_index}
        vector = self.bundle.unit_factors[item_index]
        ranked = self._top_by_vector(self.bundle.similar_index, vector, filters, limit, blocked)
        reason = f"similar to {self.catalog.title(item_index)}"
        return [Recommended(i, s, reason) for i, s in ranked]

    def bought_together(
        self,
        item_indices: Iterable[int],
        filters: Filters,
        limit: int,
        history: VisitorHistory | None = None,
    ) -> list[Recommended]:
        """Items most often in the same orders as any of `item_indices`."""
        anchors = list(dict.fromkeys(item_indices))
        blocked = self._blocked(history or VisitorHistory(), filters) | set(anchors)
        totals: dict[int, float] = {}
        because: dict[int, tuple[float, int]] = {}  # partner -> (best single score, anchor)
        for anchor in anchors:
            partners, scores = self.bundle.bought_together(anchor)
            for partner, score in zip(partners.tolist(), scores.tolist(), strict=True):
                totals[partner] = totals.get(partner, 0.0) + score
                if score > because.get(partner, (0.0, anchor))[0]:
                    because[partner] = (score, anchor)
        order = sorted(totals, key=lambda i: -totals[i])
        keep = self._admissible(np.array(order, dtype=np.int64), filters, blocked)
        return [
            Recommended(i, totals[i], f"often bought with {self.catalog.title(because[i][1])}")
            for i in keep[:limit].tolist()
        ]

    def trending(
        self, filters: Filters, limit: int, blocked: set[int] | None = None
    ) -> list[Recommended]:
        """Most popular lately, the fallback for a visitor with no history."""
        order, scores = self.bundle.trending, self.bundle.trending_scores
        blocked = blocked or set()
        window = 4 * limit + len(blocked)
        while True:  # scan a growing prefix: no catalog-sized work per request
            head = order[:window]
            positions = np.flatnonzero(self._admissible_mask(head, filters, blocked))[:limit]
            if len(positions) == limit or window >= len(order):
                break
            window *= 4
        return [
            Recommended(int(order[p]), float(scores[p]), self._trending_reason(int(order[p])))
            for p in positions.tolist()
        ]

    def product(
        self, item_index: int, history: VisitorHistory, filters: Filters, limit: int, now: float
    ) -> list[Recommended]:
        """For a product page: similar items, then the visitor's own picks."""
        similar = self.similar(item_index, filters, limit, history)
        return self._then_personal(similar, history, filters, limit, now, {item_index})

    def post_purchase(
        self, history: VisitorHistory, filters: Filters, limit: int, now: float
    ) -> list[Recommended]:
        """After an order: complements of what was just bought, then personal picks."""
        index_of = self.bundle.index_of
        bought = [x.item_id for x in history.interactions if x.event_type == "purchase"]
        anchors = [index_of[i] for i in reversed(bought[-5:]) if i in index_of]
        together = self.bought_together(anchors, filters, limit, history)
        return self._then_personal(together, history, filters, limit, now, set(anchors))

    def cart(
        self, history: VisitorHistory, filters: Filters, limit: int, now: float
    ) -> list[Recommended]:
        """Complements of what is in the cart, then personal picks."""
        anchors = [self.bundle.index_of[i] for i in history.cart if i in self.bundle.index_of]
        together = self.bought_together(anchors, filters, limit, history)
        return self._then_personal(together, history, filters, limit, now, set(anchors))

    # -- helpers -----------------------------------------------------------------------

    def _then_personal(
        self,
        first: list[Recommended],
        history: VisitorHistory,
        filters: Filters,
        limit: int,
        now: float,
        anchors: set[int],
    ) -> list[Recommended]:
        if len(first) >= limit:
            return first
        taken = anchors | {r.index for r in first}
        personal = self.personal(history, filters, limit + len(taken), now)
        return first + [r for r in personal if r.index not in taken][: limit - len(first)]

    def _personal_als(
        self,
        history: VisitorHistory,
        seeds: IntArray,
        weights: FloatArray,
        filters: Filters,
        limit: int,
        blocked: set[int],
    ) -> list[Recommended]:
        """ALS: fold the visitor in, then search the item vectors."""
        bundle = self.bundle
        vector = fold_in_user(
            bundle.gram, bundle.item_factors, seeds, confidence(weights, bundle.alpha)
        )
        ranked = self._top_by_vector(bundle.user_index, vector, filters, limit, blocked)
        if not ranked:
            return []
        latest = self._latest_types(history)
        anchors = self._nearest_seeds(seeds, [i for i, _ in ranked])
        return [
            Recommended(i, s, self._because(a, latest))
            for (i, s), a in zip(ranked, anchors, strict=True)
        ]

    def _personal_item_item(
        self,
        history: VisitorHistory,
        seeds: IntArray,
        weights: FloatArray,
        filters: Filters,
        limit: int,
        blocked: set[int],
    ) -> list[Recommended]:
        """EASE or item-kNN: sum the visitor's items' weight rows, as training scores a row."""
        strengths = strength(weights)
        want = 4 * limit + len(blocked)
        while True:  # widen until `limit` admissible items or nothing more scores
            scored = score_item_item(
                self.bundle.item_item, seeds, strengths, self.bundle.n_items, want
            )
            keep = self._admissible_mask(scored.targets, filters, blocked)
            if keep.sum() >= limit or scored.exhausted:
                break
            want *= 4
        latest = self._latest_types(history)
        chosen = zip(
            scored.targets[keep][:limit].tolist(),
            scored.scores[keep][:limit].tolist(),
            scored.anchors[keep][:limit].tolist(),
            strict=True,
        )
        return [Recommended(t, s, self._because(a, latest)) for t, s, a in chosen]

    def _seeds(self, history: VisitorHistory, now: float) -> tuple[IntArray, FloatArray]:
        """Bundle indices and summed, decayed weights of the visitor's interactions.

        Cart items whose add_to_cart fell off the capped recent list still count, once.
        """
        index_of = self.bundle.index_of
        known = [x for x in history.interactions if x.item_id in index_of]
        seen = {x.item_id for x in known}
        known += [
            Interaction(i, "add_to_cart", now)
            for i in history.cart
            if i in index_of and i not in seen
        ]
        if not known:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        indices = np.fromiter(
            (index_of[x.item_id] for x in known), dtype=np.int64, count=len(known)
        )
        base = np.fromiter((event_weight(x.event_type) for x in known), np.float32, len(known))
        half_life = self.bundle.half_life_days
        if half_life is not None:
            ages = now - np.fromiter((x.timestamp for x in known), np.float64, len(known))
            base = base * recency_decay(ages, half_life)
        return aggregate_interactions(indices, base)

    def _blocked(self, history: VisitorHistory, filters: Filters) -> set[int]:
        """Excluded by the request, or already bought (unless it may be bought again)."""
        bought, rebuyable = self._purchases(history)
        return self._excluded(filters) | (bought - rebuyable)

    def _excluded(self, filters: Filters) -> set[int]:
        index_of = self.bundle.index_of
        return {index_of[i] for i in filters.exclude if i in index_of}

    def _purchases(self, history: VisitorHistory) -> tuple[set[int], set[int]]:
        """What the visitor bought, and which of it may be recommended again: all of it
        when exclusion is off, else what is in replenishable categories."""
        index_of = self.bundle.index_of
        bought = {index_of[i] for i in history.purchased if i in index_of}
        if not self.exclude_purchased:
            return bought, bought
        category = self.catalog.category
        return bought, {i for i in bought if category(i) in self.replenishable}

    def _top_by_vector(
        self,
        index: object,
        vector: FloatArray,
        filters: Filters,
        limit: int,
        blocked: set[int],
    ) -> list[tuple[int, float]]:
        """Search wider and wider until `limit` admissible items are found or none remain.

        The first search asks for the blocked items plus twice `limit`: the blocked ones
        (what the visitor touched) sit near its vector, and `limit` more leaves room for
        items out of stock. Asking for more costs HNSW a longer candidate list.
        """
        n = max(len(blocked) + 2 * limit, 32)
        ceiling = min(self.bundle.n_items, self.max_candidates)
        while True:
            n = min(n, ceiling)
            ids, scores = search(index, vector, n)  # type: ignore[arg-type]
            keep_mask = self._admissible_mask(ids, filters, blocked)
            if keep_mask.sum() >= limit or n >= ceiling:
                kept = ids[keep_mask][:limit], scores[keep_mask][:limit]
                return list(zip(kept[0].tolist(), kept[1].tolist(), strict=True))
            n *= 4

    def _admissible_mask(
        self, candidates: IntArray, filters: Filters, blocked: set[int]
    ) -> npt.NDArray[np.bool_]:
        mask = self.catalog.available[candidates].copy()
        if filters.category is not None:
            code = self.catalog.find_code(filters.category)
            mask &= self.catalog.category_codes[candidates] == (code if code is not None else -2)
        if blocked and len(candidates) <= SET_LOOKUP_MAX:  # far cheaper than np.isin here
            mask &= np.fromiter(
                (c not in blocked for c in candidates.tolist()), np.bool_, len(candidates)
            )
        elif blocked:
            mask &= ~np.isin(candidates, np.fromiter(blocked, dtype=np.int64, count=len(blocked)))
        return mask

    def _admissible(self, candidates: IntArray, filters: Filters, blocked: set[int]) -> IntArray:
        if len(candidates) == 0:
            return candidates
        return candidates[self._admissible_mask(candidates, filters, blocked)]

    def _backfill(
        self, results: list[Recommended], filters: Filters, limit: int, blocked: set[int]
    ) -> list[Recommended]:
        """Top a short list up with trending items so a page never shows a gap."""
        if len(results) >= limit:
            return results
        taken = blocked | {r.index for r in results}
        return results + self.trending(filters, limit - len(results), blocked=taken)

    def _nearest_seeds(self, seeds: IntArray, targets: list[int]) -> list[int]:
        """For each recommended item, the visitor's item most like it: the "because"."""
        unit = self.bundle.unit_factors
        return seeds[np.argmax(unit[targets] @ unit[seeds].T, axis=1)].tolist()

    @staticmethod
    def _latest_types(history: VisitorHistory) -> dict[str, str]:
        latest = {x.item_id: x.event_type for x in history.interactions}
        latest.update({i: "add_to_cart" for i in history.cart})
        return latest

    def _because(self, anchor: int, latest: dict[str, str]) -> str:
        verb = VERBS.get(latest.get(self.bundle.items[anchor]["item_id"], "view"), "viewed")
        return f"similar to {self.catalog.title(anchor)} you {verb}"

    def _trending_reason(self, index: int) -> str:
        category = self.catalog.category(index)
        return f"trending in {category}" if category else "trending now"


def cap_per_category(
    ranked: list[Recommended], catalog: CatalogView, cap: int, limit: int
) -> list[Recommended]:
    """Keep ranking order but at most `cap` items of any one category, for variety.

    Items without a category are not capped: they share no category to crowd.
    """
    counts: dict[str, int] = {}
    kept = []
    for entry in ranked:
        category = catalog.category(entry.index)
        if category is None or counts.get(category, 0) < cap:
            if category is not None:
                counts[category] = counts.get(category, 0) + 1
            kept.append(entry)
            if len(kept) == limit:
                break
    return kept

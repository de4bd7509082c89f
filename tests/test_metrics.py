"""Ranking metrics against hand-computed cases, and splits that never leak."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.interactions import InteractionLog
from training.metrics import (
    coverage_at_k,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from training.splits import held_out_items, random_split, time_split

# Two users, top 4. User 0 has 2 relevant items, found at ranks 1 and 3 (1-based);
# user 1 has 3 relevant items, found at rank 2 only.
HITS = np.array([[True, False, True, False], [False, True, False, False]])
RELEVANT = np.array([2, 3])


def test_precision_and_recall() -> None:
    assert precision_at_k(HITS, 4) == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert precision_at_k(HITS, 1) == pytest.approx(0.5)
    assert recall_at_k(HITS, RELEVANT, 4) == pytest.approx((2 / 2 + 1 / 3) / 2)
    assert recall_at_k(HITS, RELEVANT, 2) == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_ndcg_uses_the_ideal_ranking_of_min_relevant_k() -> None:
    user0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    user1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert ndcg_at_k(HITS, RELEVANT, 4) == pytest.approx((user0 + user1) / 2)
    perfect = np.array([[True, True, False]])
    assert ndcg_at_k(perfect, np.array([2]), 3) == pytest.approx(1.0)


def test_map_divides_by_the_number_of_relevant_items() -> None:
    user0 = (1 / 1 + 2 / 3) / 2
    user1 = (1 / 2) / 3
    assert map_at_k(HITS, RELEVANT, 4) == pytest.approx((user0 + user1) / 2)


def test_hit_rate_and_coverage() -> None:
    assert hit_rate_at_k(HITS, 1) == pytest.approx(0.5)
    assert hit_rate_at_k(HITS, 2) == pytest.approx(1.0)
    top = np.array([[0, 1, 2], [2, 3, 4]])
    assert coverage_at_k(top, 10, 2) == pytest.approx(4 / 10)
    assert coverage_at_k(top, 10, 3) == pytest.approx(5 / 10)


def synthetic_log(seed: int = 0) -> InteractionLog:
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = 5000
    people = rng.integers(0, 200, n)
    return InteractionLog(
        people=people.astype(np.int64),
        items=rng.integers(0, 300, n).astype(np.int64),
        weights=np.ones(n, dtype=np.float32),
        times=np.sort(rng.uniform(1.6e9, 1.7e9, n)),
        person_ids=[f"p{i}" for i in range(200)],
        n_items=300,
        order_items=sp.csr_matrix((0, 300)),
        events_read=n,
    )


def test_a_random_split_holds_out_a_share_of_each_users_items_and_never_leaks() -> None:
    log = synthetic_log()
    split = random_split(log, 0.25, seed=1)
    assert len(split.train) + len(split.test) == len(log)
    train_pairs = set(zip(split.train.people.tolist(), split.train.items.tolist(), strict=True))
    test_pairs = set(zip(split.test.people.tolist(), split.test.items.tolist(), strict=True))
    assert not train_pairs & test_pairs  # every row of a (user, item) pair is on one side
    for user in range(200):
        items = {i for p, i in train_pairs | test_pairs if p == user}
        held = {i for p, i in test_pairs if p == user}
        assert len(held) == math.floor(len(items) * 0.25 + 0.5)
    again = random_split(log, 0.25, seed=1)
    assert np.array_equal(again.test.items, split.test.items)  # seeded
    assert not np.array_equal(random_split(log, 0.25, seed=2).test.items, split.test.items)


def test_a_time_split_puts_everything_after_the_cut_in_test() -> None:
    log = synthetic_log()
    split = time_split(log, test_days=30, test_fraction=0.25)
    assert split.train.times.max() < split.test.times.min()
    assert split.test.times.min() >= log.times.max() - 30 * 86_400
    users, relevant = held_out_items(split)
    train_pairs = set(zip(split.train.people.tolist(), split.train.items.tolist(), strict=True))
    for user, items in zip(users.tolist(), relevant, strict=True):
        assert user in set(split.train.people.tolist())
        assert not {(user, i) for i in items.tolist()} & train_pairs

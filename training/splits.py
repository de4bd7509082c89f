"""Train/test splits of an interaction log, as the published protocols make them.

A random split holds out a seeded fraction of each user's distinct items (stratified per
user); a time split holds out everything after a cut. Either way the held-out part is
turned into, per user, the items to find: those the user did not touch in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.weights import SECONDS_PER_DAY
from training.interactions import InteractionLog

IntArray = npt.NDArray[np.int64]


@dataclass
class Split:
    train: InteractionLog
    test: InteractionLog
    protocol: dict[str, object]


def random_split(log: InteractionLog, test_fraction: float, seed: int) -> Split:
    """Hold out `test_fraction` of each user's distinct items; all rows of a pair move together."""
    pair = log.people * log.n_items + log.items
    unique_pairs, row_pair = np.unique(pair, return_inverse=True)
    owners = unique_pairs // log.n_items
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(unique_pairs))
    order = shuffled[np.argsort(owners[shuffled], kind="stable")]  # by user, random within
    user_sizes = np.bincount(owners[order], minlength=log.n_people)
    starts = np.concatenate([[0], np.cumsum(user_sizes)[:-1]])
    rank_in_user = np.arange(len(order)) - np.repeat(starts, user_sizes)
    held = np.zeros(len(unique_pairs), dtype=bool)
    held_count = np.floor(user_sizes * test_fraction + 0.5).astype(np.int64)
    held[order] = rank_in_user < np.repeat(held_count, user_sizes)
    test_rows = held[row_pair]
    protocol = {"split": "random", "test_fraction": test_fraction, "seed": seed}
    return Split(log.subset(~test_rows), log.subset(test_rows), protocol)


def time_split(log: InteractionLog, test_days: float | None, test_fraction: float) -> Split:
    """Hold out everything after the cut: the last `test_days`, else the last fraction of rows."""
    if test_days is not None:
        cut = float(log.times.max()) - test_days * SECONDS_PER_DAY
    else:
        cut = float(np.quantile(log.times, 1.0 - test_fraction))
    test_rows = log.times >= cut
    protocol = {"split": "time", "cut": cut, "test_days": test_days, "test_fraction": test_fraction}
    return Split(log.subset(~test_rows), log.subset(test_rows), protocol)


def split_log(
    log: InteractionLog, kind: str, test_fraction: float, seed: int, test_days: float | None
) -> Split:
    if kind == "random":
        return random_split(log, test_fraction, seed)
    if kind == "time":
        return time_split(log, test_days, test_fraction)
    raise ValueError(f"unknown split {kind!r}: use random or time")


def held_out_items(split: Split) -> tuple[IntArray, list[IntArray]]:
    """Users to evaluate and, for each, the held-out items they did not touch in training."""
    n_items = split.train.n_items
    train_pairs = np.unique(split.train.people * n_items + split.train.items)
    test_pairs = np.unique(split.test.people * n_items + split.test.items)
    fresh = test_pairs[~np.isin(test_pairs, train_pairs)]
    users_with_training = np.unique(split.train.people)
    fresh = fresh[np.isin(fresh // n_items, users_with_training)]
    users, starts = np.unique(fresh // n_items, return_index=True)
    items = np.split(fresh % n_items, starts[1:]) if len(fresh) else []
    return users.astype(np.int64), [np.asarray(group, dtype=np.int64) for group in items]

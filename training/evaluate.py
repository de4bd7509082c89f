"""Offline evaluation: train every model on the training part, rank all unseen items.

The protocol is the published one: per user, rank every item the user did not touch in
training, and score the top k against the held-out items. Hyper-parameters (and the
recency half-life) are chosen on a validation split carved from the training part with
the same protocol, never from the test part.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from tqdm import tqdm

from training.algorithms import FITTERS, GRIDS, Fitted
from training.datafiles import read_catalog, read_events
from training.interactions import InteractionLog, read_log
from training.metrics import all_metrics
from training.splits import Split, held_out_items, split_log

IntArray = npt.NDArray[np.int64]
PLOT_KS = (1, 5, 10, 20, 50)
HALF_LIVES: tuple[float | None, ...] = (None, 30.0, 120.0)
SELECTION_METRIC = "ndcg@10"
CHUNK = 512


@dataclass(frozen=True)
class Protocol:
    split: str = "random"
    test_fraction: float = 0.25
    test_days: float | None = None
    seed: int = 42
    ks: tuple[int, ...] = (10, 20)
    models: tuple[str, ...] = ("popular", "itemknn", "als", "bpr", "ease")
    tune: bool = True


@dataclass
class Candidate:
    """One model with its chosen settings and how they did on validation."""

    name: str
    params: dict[str, Any]
    half_life_days: float | None
    validation: float
    tried: list[dict[str, Any]] = field(default_factory=list)
    confirmed: float | None = None  # the chosen settings re-scored on a fresh split


@dataclass(frozen=True)
class Heldout:
    """Who is evaluated, on what, against which training rows."""

    seen: sp.csr_matrix
    users: IntArray
    relevant: list[IntArray]

    @classmethod
    def from_split(cls, split: Split) -> Heldout:
        users, relevant = held_out_items(split)
        return cls(split.train.matrix(), users, relevant)


def rank_top(fitted: Fitted, seen: sp.csr_matrix, users: IntArray, k: int) -> IntArray:
    """Each user's top k among the items they did not touch in training."""
    k = min(k, seen.shape[1] - 1)
    top = np.empty((len(users), k), dtype=np.int64)
    for start in range(0, len(users), CHUNK):
        chunk = users[start : start + CHUNK]
        scores = fitted.scores(chunk)
        mask = seen[chunk]
        scores[mask.nonzero()] = -np.inf
        best = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        top[start : start + len(chunk)] = np.take_along_axis(best, order, axis=1)
    return top


def score_model(fitted: Fitted, heldout: Heldout, ks: Sequence[int]) -> dict[str, float]:
    top = rank_top(fitted, heldout.seen, heldout.users, max(ks))
    hits = np.array(
        [np.isin(row, relevant) for row, relevant in zip(top, heldout.relevant, strict=True)]
    )
    n_relevant = np.array([len(r) for r in heldout.relevant], dtype=np.int64)
    metrics: dict[str, float] = {}
    for k in (k for k in ks if k <= top.shape[1]):
        metrics.update(all_metrics(hits, n_relevant, top, heldout.seen.shape[1], k))
    return metrics


def fit(
    name: str, train: InteractionLog, half_life: float | None, params: dict[str, Any]
) -> Fitted:
    return FITTERS[name](train.matrix(half_life_days=half_life), **params)


def tune(name: str, validation: Split, protocol: Protocol) -> Candidate:
    """Coordinate search: the model's grid, then the recency half-life, then the grid again.

    Every trial is kept, and the best one overall wins.
    """
    heldout = Heldout.from_split(validation)
    grid = GRIDS[name] if protocol.tune else GRIDS[name][:1]
    half_lives = HALF_LIVES if protocol.tune else (None,)
    trials: list[tuple[float, float | None, dict[str, Any]]] = []

    def trial(half_life: float | None, params: dict[str, Any]) -> float:
        fitted = fit(name, validation.train, half_life, params)
        value = score_model(fitted, heldout, (10,))[SELECTION_METRIC]
        trials.append((value, half_life, params))
        return value

    params = max(grid, key=lambda p: trial(None, p))
    half_life = max(half_lives, key=lambda h: trial(h, params) if h is not None else -1.0)
    if half_life is not None and len(grid) > 1:
        for other in grid:
            if other is not params:
                trial(half_life, other)
    value, half_life, params = max(trials, key=lambda t: t[0])
    tried = [{"half_life_days": h, **p, SELECTION_METRIC: round(v, 5)} for v, h, p in trials]
    return Candidate(name, params, half_life, value, tried)


def evaluate(
    events_path: Path, catalog_path: Path, protocol: Protocol, out: Path
) -> dict[str, Any]:
    """Run the protocol on one dataset and write report.json, report.md and plots to `out`."""
    items = read_catalog(catalog_path)
    index_of = {item["item_id"]: i for i, item in enumerate(items)}
    log = read_log(read_events(events_path), index_of)
    split = split_log(
        log, protocol.split, protocol.test_fraction, protocol.seed, protocol.test_days
    )
    validation = split_log(
        split.train, protocol.split, protocol.test_fraction, protocol.seed + 1, protocol.test_days
    )
    heldout = Heldout.from_split(split)
    ks = sorted(set(protocol.ks) | set(PLOT_KS))
    models: dict[str, Any] = {}
    for name in tqdm(protocol.models, desc="models", unit="model"):
        candidate = tune(name, validation, protocol)
        started = time.perf_counter()
        fitted = fit(name, split.train, candidate.half_life_days, candidate.params)
        train_seconds = time.perf_counter() - started
        metrics = score_model(fitted, heldout, ks)
        models[name] = {
            **{key: round(value, 5) for key, value in metrics.items()},
            "coverage": round(metrics.get(f"coverage@{max(protocol.ks)}", float("nan")), 5),
            "train_seconds": round(train_seconds, 2),
            "params": {**candidate.params, "half_life_days": candidate.half_life_days},
            "validation": {
                SELECTION_METRIC: round(candidate.validation, 5),
                "tried": candidate.tried,
            },
        }
    report = {
        "dataset": {
            "events": str(events_path),
            "catalog": str(catalog_path),
            "people": log.n_people,
            "items": log.n_items,
            "interactions": len(log),
            "test_users": len(heldout.users),
            "test_items": int(sum(len(r) for r in heldout.relevant)),
        },
        "protocol": {**asdict(protocol), **split.protocol, "ranking": "all unseen items"},
        "models": models,
    }
    write_report(report, out, protocol.ks)
    return report


def write_report(report: dict[str, Any], out: Path, ks: Sequence[int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown_report(report, ks))
    plot_metrics(report, out / "metrics_at_k.png")


def markdown_report(report: dict[str, Any], ks: Sequence[int]) -> str:
    dataset, protocol = report["dataset"], report["protocol"]
    lines = [
        f"# Offline evaluation: {Path(dataset['events']).parent.name or dataset['events']}",
        "",
        f"{dataset['people']:,} people, {dataset['items']:,} items, "
        f"{dataset['interactions']:,} interactions; {protocol['split']} split "
        f"(test fraction {protocol['test_fraction']}, test days {protocol['test_days']}, "
        f"seed {protocol['seed']}); {dataset['test_users']:,} test users; "
        "every unseen item ranked.",
        "",
    ]
    for k in ks:
        names = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"]
        lines += [f"## Top {k}", "", "| model | " + " | ".join(f"{n}@{k}" for n in names)
                  + " | train s | chosen settings |",
                  "|---|" + "---:|" * (len(names) + 1) + "---|"]  # fmt: skip
        for model, row in sorted(report["models"].items(), key=lambda kv: -kv[1][f"ndcg@{k}"]):
            values = " | ".join(f"{row[f'{n}@{k}']:.4f}" for n in names)
            settings = ", ".join(f"{key}={value}" for key, value in row["params"].items())
            lines.append(f"| {model} | {values} | {row['train_seconds']} | {settings} |")
        lines.append("")
    lines.append("![metrics against k](metrics_at_k.png)")
    return "\n".join(lines) + "\n"


def plot_metrics(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"]
    figure, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    for axis, metric in zip(axes.ravel(), names, strict=True):
        for model, row in report["models"].items():
            ks = [k for k in PLOT_KS if f"{metric}@{k}" in row]
            axis.plot(ks, [row[f"{metric}@{k}"] for k in ks], marker="o", label=model)
        axis.set_title(f"{metric}@k")
        axis.set_xlabel("k")
        axis.set_xscale("log")
        axis.set_xticks(list(PLOT_KS), [str(k) for k in PLOT_KS])
        axis.grid(alpha=0.3)
    axes[0][0].legend()
    title = Path(report["dataset"]["events"]).parent.name
    figure.suptitle(f"{title}: {report['protocol']['split']} split, all unseen items ranked")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

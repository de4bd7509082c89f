"""What live churn scoring adds to a profile read: features plus both ONNX models.

Generates a store, trains a bundle with the churn models (ALS, no tuning), then scores
people of every history size the store holds, one at a time as the server does, and
prints p50/p99/max per person. The target is under 1 ms at p99.

    .venv/bin/python benchmarks/churn_scoring.py --events 200000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from campaigns.person import Order, PersonRecord
from models.bundle import newest_bundle_path
from models.churn import ChurnScorer
from state.people import score_churn
from training.churn import replay
from training.datafiles import read_events
from training.generate import StoreShape, generate_store
from training.train import TrainOptions, train_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    generate_store(work, StoreShape(events=args.events, visitors=args.events // 40))
    events = work / "events.jsonl.gz"
    models = work / "models"
    started = time.perf_counter()
    train_bundle(events, work / "catalog.jsonl.gz", models, TrainOptions(model="als", tune=False))
    training_seconds = time.perf_counter() - started
    bundle = newest_bundle_path(models)
    assert bundle is not None
    scorer = ChurnScorer.in_bundle(bundle)
    assert scorer is not None, "the store was too short to train the churn models"
    history = replay(read_events(events))
    now = history.last
    records = [
        PersonRecord(
            person=person,
            profile={"first_seen": str(h.first_seen)},
            orders=[Order(key, o.value, o.at) for key, o in h.orders.items()],
            counts=h.days,
        )
        for person, h in history.people_at(now).items()
        if h.orders
    ][: args.people]
    for record in records[:200]:  # warm the sessions
        score_churn(scorer, record, now)
    samples = []
    for record in records:
        started = time.perf_counter()
        score_churn(scorer, record, now)
        samples.append((time.perf_counter() - started) * 1000)
    orders = [len(r.orders) for r in records]
    figures = {
        "people": len(samples),
        "orders_per_person_max": max(orders),
        "p50_ms": statistics.median(samples),
        "p99_ms": statistics.quantiles(samples, n=100)[98],
        "max_ms": max(samples),
        "bundle_training_seconds": training_seconds,
    }
    print(f"{'people':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(f"{figures['people']:8d} {figures['p50_ms']:8.3f} {figures['p99_ms']:8.3f} "
          f"{figures['max_ms']:8.3f}")  # fmt: skip
    out = Path("var/bench/churn_scoring.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Training time and peak memory against events: a full retrain, as `train` runs it.

For each `--events` size this generates a store once (cached under
var/bench/train-<events>, 20 events a visitor) and times `python -m training train` in a
child process for each variant:

- `auto`: the default, which compares the servable models on a validation sample,
  then fits the winner, ALS, the indexes and the churn and value models;
- `als`: the model pinned with `--model als --no-tune`, churn models included.

Wall-clock seconds and the child's peak resident memory (from `wait4`) are printed as a
table (median of `--runs`, with min-max) and written as JSON with each run's chosen
model.

    .venv/bin/python -m benchmarks.training_time --events 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from models.bundle import MANIFEST, newest_bundle_path

VARIANTS: dict[str, list[str]] = {"auto": [], "als": ["--model", "als", "--no-tune"]}


def ensure_store(events: int, items: int) -> Path:
    store = Path(f"var/bench/train-{events}")
    if not (store / "events.jsonl.gz").is_file():
        command = ["generate", "--out", str(store), "--items", str(items),
                   "--visitors", str(events // 20), "--events", str(events)]  # fmt: skip
        subprocess.run([sys.executable, "-m", "training", *command], check=True)
    return store


def timed_train(store: Path, variant: str) -> dict[str, Any]:
    """One `train` run in a fresh models folder: seconds, peak MB and what it chose."""
    with tempfile.TemporaryDirectory(dir="var/bench") as models:
        command = [sys.executable, "-m", "training", "train",
                   "--events", str(store / "events.jsonl.gz"),
                   "--catalog", str(store / "catalog.jsonl.gz"),
                   "--models-dir", models, *VARIANTS[variant]]  # fmt: skip
        began = time.perf_counter()
        child = subprocess.Popen(command)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"train failed for {store} ({variant})")
        bundle = newest_bundle_path(Path(models))
        assert bundle is not None
        manifest = json.loads((bundle / MANIFEST).read_text())
    return {
        "seconds": round(seconds, 1),
        "peak_mb": round(usage.ru_maxrss / 1024),  # Linux reports kilobytes
        "model": manifest["model"],
        "interactions": manifest["rows"]["interactions"],
        "people": manifest["rows"]["people"],
        "compared_on": manifest.get("selection_compared_on", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("var/bench/training_time.json"))
    args = parser.parse_args()
    results = []
    for events in args.events:
        store = ensure_store(events, args.items)
        for variant in args.variants:
            runs = [timed_train(store, variant) for _ in range(args.runs)]
            results.append({"events": events, "variant": variant, "runs": runs})
    print(f"\n{'events':>12} {'variant':>8} {'seconds (min-max)':>22} {'peak MB':>8} {'models':>8}")
    for row in results:
        seconds = [run["seconds"] for run in row["runs"]]
        spread = f"{statistics.median(seconds):,.1f} ({min(seconds):,.0f}-{max(seconds):,.0f})"
        peak = statistics.median(run["peak_mb"] for run in row["runs"])
        chosen = ",".join(sorted({run["model"] for run in row["runs"]}))
        print(f"{row['events']:>12,} {row['variant']:>8} {spread:>22} {peak:>8,.0f} {chosen:>8}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

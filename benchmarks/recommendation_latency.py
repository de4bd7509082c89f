"""Recommendation latency against a running Encore server, as a caller sees it.

Seeds visitors with a few views each, then asks for home recommendations: first one
request at a time (latency: p50/p90/p99), then with concurrent clients (throughput).
Prints a table and writes JSON. Start a server first (e.g. `make demo`), then:

    .venv/bin/python benchmarks/recommendation_latency.py --url http://127.0.0.1:8000 \
        --key pk_demo_public --catalog var/demo/catalog.jsonl.gz
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path

import httpx

from training.datafiles import read_catalog


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def seed_visitors(client: httpx.AsyncClient, items: list[str], visitors: int) -> list[str]:
    ids = [f"bench-{n}-{random.random():.6f}" for n in range(visitors)]
    for start in range(0, visitors, 100):
        events = [
            {"type": "view", "visitor_id": v, "item_id": random.choice(items)}
            for v in ids[start : start + 100]
            for _ in range(3)
        ]
        response = await client.post("/v1/events", json={"events": events})
        response.raise_for_status()
    return ids


async def one_at_a_time(client: httpx.AsyncClient, visitors: list[str], n: int) -> list[float]:
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        response = await client.get(
            "/v1/recommendations", params={"visitor_id": visitors[i % len(visitors)]}
        )
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return latencies


async def concurrent(client: httpx.AsyncClient, visitors: list[str], n: int, workers: int) -> float:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            response = await client.get(
                "/v1/recommendations", params={"visitor_id": visitors[i % len(visitors)]}
            )
            response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return n / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default="pk_demo_public")
    parser.add_argument("--catalog", type=Path, default=Path("var/demo/catalog.jsonl.gz"))
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("var/bench/recommendation_latency.json"))
    args = parser.parse_args()
    items = [item["item_id"] for item in read_catalog(args.catalog)]
    async with httpx.AsyncClient(base_url=args.url, headers={"X-API-Key": args.key}) as client:
        visitors = await seed_visitors(client, items, args.visitors)
        await one_at_a_time(client, visitors, 100)  # warm up
        latencies = await one_at_a_time(client, visitors, args.requests)
        throughput = await concurrent(client, visitors, args.requests, args.concurrency)
    result = {
        "requests": args.requests,
        "p50_ms": round(statistics.median(latencies), 3),
        "p90_ms": round(percentile(latencies, 0.90), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "throughput_rps": round(throughput, 1),
        "concurrency": args.concurrency,
        "client": "httpx (one Python process; the client itself costs a share of the CPU)",
    }
    print(f"{'metric':<16}{'value':>12}")
    for key in ("p50_ms", "p90_ms", "p99_ms", "throughput_rps"):
        print(f"{key:<16}{result[key]:>12}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())

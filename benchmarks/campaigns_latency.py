"""What /v1/content and /v1/offers add to a request, against a running server.

Seeds a customer with orders, a cart and a wishlist, then times, one request at a time,
GET /healthz (the framework's floor), /v1/content and /v1/offers; the figure is each
median minus the floor's median. Prints a table and writes JSON. Start a server first
(e.g. `make demo`, which loads campaigns.example.yaml), then:

    .venv/bin/python benchmarks/campaigns_latency.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import httpx


def timed(client: httpx.Client, path: str, params: dict[str, str], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, params=params)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


def wrk_median_ms(url: str, key: str, seconds: int) -> float:
    """p50 of one connection hammering `url` with wrk (a C client: no Python in the way)."""
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", "-H", f"X-API-Key: {key}", url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    value, unit = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def seed(client: httpx.Client, visitor: str, secret_key: str) -> None:
    """The history comes from the store's server (the secret key): it names a customer."""
    events = [
        {"type": "purchase", "visitor_id": visitor, "customer_id": f"c-{visitor}",
         "order_id": f"{visitor}-{n}", "value": 120, "items": [{"item_id": "i000001"}]}
        for n in range(8)
    ] + [
        {"type": "add_to_cart", "visitor_id": visitor, "item_id": "i000002"},
        {"type": "wishlist_add", "visitor_id": visitor, "item_id": "i000003"},
        {"type": "shipment_delayed", "visitor_id": visitor},
    ]  # fmt: skip
    client.post(
        "/v1/events", json={"events": events}, headers={"X-API-Key": secret_key}
    ).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default="pk_demo_public")
    parser.add_argument("--secret-key", default="sk_demo_secret", help="to seed the history")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("var/bench/campaigns_latency.json"))
    parser.add_argument("--seconds", type=int, default=5, help="per route, when wrk is used")
    args = parser.parse_args()
    visitor = f"bench-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=args.url, headers={"X-API-Key": args.key}) as client:
        seed(client, visitor, args.secret_key)
        plans = {
            "healthz": ("/healthz", {}),
            "content": ("/v1/content", {"visitor_id": visitor, "slot": "cart_banner"}),
            "offers": ("/v1/offers", {"visitor_id": visitor}),
        }
        for path, params in plans.values():
            timed(client, path, params, 100)  # warm up
        if shutil.which("wrk"):
            client_name = "wrk, one connection"
            medians = {
                name: wrk_median_ms(str(client.build_request("GET", path, params=params).url),
                                    args.key, args.seconds)
                for name, (path, params) in plans.items()
            }  # fmt: skip
        else:  # interleaved, so drift on a noisy machine hits every route alike
            client_name = "httpx, one connection (Python shares the CPU with the server)"
            samples: dict[str, list[float]] = {name: [] for name in plans}
            for _ in range(args.requests):
                for name, (path, params) in plans.items():
                    samples[name] += timed(client, path, params, 1)
            medians = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "client": client_name,
        "requests": args.requests,
        "median_ms": {k: round(v, 3) for k, v in medians.items()},
        "added_ms": {
            name: round(medians[name] - medians["healthz"], 3) for name in ("content", "offers")
        },
    }
    print(f"{'route':<10}{'median ms':>12}{'added ms':>12}")
    for name, value in medians.items():
        print(f"{name:<10}{value:>12.3f}{result['added_ms'].get(name, 0.0):>12.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

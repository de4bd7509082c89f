"""Recipients per second through POST /v1/recommendations/batch, as an email send uses it.

Loads a generated store's history (10k items, 300,000 events, 15,000 visitors by
default) into a fresh Valkey through the ingest path, serves Encore with two workers,
then sends `--recipients` of the store's visitors in calls of `--per-call`, `--runs`
times: with one caller, one call at a time as one renderer would; with `--callers N`,
N renderers splitting the list, each with a call in flight. Every answer is checked to
come back in request order with the products asked for. Prints the median rate with
its range for each number of callers.

    .venv/bin/python -m benchmarks.batch_recipients
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.recommendation_floors import (
    add_store_arguments,
    bundle_for,
    encore_command,
    serving,
)
from server.inprocess import free_port
from settings import Settings
from training.backfill import load_history

SECRET_KEY = "sk_bench"
PER_RECIPIENT = 4


def load_store(redis_url: str, store: Path) -> None:
    """The store's whole history, so each recipient has a profile to personalise from."""
    settings = Settings(redis_url=redis_url)
    load_history(settings, store / "events.jsonl.gz", store / "catalog.jsonl.gz")


def send(base_url: str, visitors: list[str], per_call: int) -> None:
    """Every visitor's products, `per_call` recipients a call, one call at a time."""
    with httpx.Client(base_url=base_url, headers={"X-API-Key": SECRET_KEY}, timeout=120) as client:
        for start in range(0, len(visitors), per_call):
            chunk = visitors[start : start + per_call]
            requests = [
                {"visitor_id": v, "placement": "email", "limit": PER_RECIPIENT} for v in chunk
            ]
            response = client.post("/v1/recommendations/batch", json={"requests": requests})
            response.raise_for_status()
            results = response.json()["results"]
            if len(results) != len(chunk) or any(len(r["items"]) != PER_RECIPIENT for r in results):
                raise SystemExit(f"a batch came back short: {len(results)} of {len(chunk)}")


def recipients_per_second(base_url: str, visitors: list[str], per_call: int, callers: int) -> float:
    """`callers` renderers, each sending its share of the list."""
    shares = [visitors[n::callers] for n in range(callers)]
    began = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(lambda share: send(base_url, share, per_call), shares))
    return len(visitors) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_store_arguments(parser)
    parser.set_defaults(items=10_000, events=300_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--per-call", type=int, default=1000)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("var/bench/batch_recipients.json"))
    args = parser.parse_args()
    store, models, bundle = bundle_for(args)
    visitors = [f"v{n:07d}" for n in range(args.recipients)]  # the generated store's ids
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    commands = {"encore": encore_command(port, args.workers)}
    result: dict[str, object] = {"recipients": len(visitors), "per_call": args.per_call,
                                 "workers": args.workers}  # fmt: skip
    with serving(commands, {"encore": port}, store, models, bundle, prepare=load_store):
        send(base_url, visitors[: args.per_call], args.per_call)  # warm up
        for callers in args.callers:
            rates = [
                recipients_per_second(base_url, visitors, args.per_call, callers)
                for _ in range(args.runs)
            ]
            result[f"callers_{callers}"] = {
                "recipients_per_second": round(statistics.median(rates), 1),
                "min": round(min(rates), 1),
                "max": round(max(rates), 1),
            }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

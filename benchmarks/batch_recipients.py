"""Recipients per second through POST /v1/recommendations/batch, as an email send uses it.

Sends `--recipients` recipients in calls of `--per-call` (sequentially, as one renderer
would), checks every answer comes back in request order, and prints the rate. Start a
server first (e.g. `make demo`).

    .venv/bin/python benchmarks/batch_recipients.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default="sk_demo_secret")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--per-call", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("var/bench/batch_recipients.json"))
    args = parser.parse_args()
    visitors = [f"v{n:07d}" for n in range(args.recipients)]  # the demo store's visitors
    durations = []
    with httpx.Client(base_url=args.url, headers={"X-API-Key": args.key}, timeout=120) as client:
        for start in range(0, len(visitors), args.per_call):
            chunk = visitors[start : start + args.per_call]
            requests = [{"visitor_id": v, "placement": "email", "limit": 4} for v in chunk]
            began = time.perf_counter()
            response = client.post("/v1/recommendations/batch", json={"requests": requests})
            durations.append(time.perf_counter() - began)
            response.raise_for_status()
            results = response.json()["results"]
            assert len(results) == len(chunk) and all(len(r["items"]) == 4 for r in results)
    total = sum(durations)
    result = {
        "recipients": len(visitors),
        "per_call": args.per_call,
        "seconds": round(total, 3),
        "recipients_per_second": round(len(visitors) / total, 1),
        "slowest_call_seconds": round(max(durations), 3),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

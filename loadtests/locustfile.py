"""Locust scenarios for Encore's three callers: storefront widgets, email renderers,
and operators.

Point it at any deployment:

    ENCORE_PUBLIC_KEY=pk_... ENCORE_SECRET_KEY=sk_... \\
        .venv/bin/locust -f loadtests/locustfile.py --host https://encore.example.com

or run `make loadtest` against a local `make demo` (headless, fixed time, CSV and HTML
report under var/loadtest/). Visitors are drawn from a large population (a few come
back often, most rarely), and new ones keep arriving. Item ids are learnt from the
server's trending list at start, so no catalog file is needed.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.env import Environment

PUBLIC = {"X-API-Key": os.environ.get("ENCORE_PUBLIC_KEY", "pk_demo_public")}
SECRET = {"X-API-Key": os.environ.get("ENCORE_SECRET_KEY", "sk_demo_secret")}
POPULATION = int(os.environ.get("ENCORE_VISITORS", "1000000"))
NEW_VISITOR_SHARE = 0.2
ITEMS: list[str] = []


@events.test_start.add_listener
def learn_items(environment: Environment, **_: Any) -> None:
    """Fill ITEMS from the live trending list, so requests name real products."""
    import httpx

    host = environment.host or "http://127.0.0.1:8000"
    response = httpx.get(f"{host}/v1/trending", params={"limit": 100}, headers=PUBLIC, timeout=10)
    response.raise_for_status()
    ITEMS[:] = [item["item_id"] for item in response.json()["items"]] or ["i000001"]


def returning_visitor() -> str:
    """Skewed: low ids come back far more often than high ones."""
    return f"lt-{int(POPULATION * random.random() ** 3)}"


class StorefrontVisitor(FastHttpUser):
    """A shopper's session: pages with recommendation widgets, clicks, carts, offers."""

    weight = 10
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        new = random.random() < NEW_VISITOR_SHARE
        self.visitor = f"lt-new-{uuid.uuid4().hex[:12]}" if new else returning_visitor()

    def event(self, kind: str, **fields: Any) -> None:
        body = {"type": kind, "visitor_id": self.visitor, **fields}
        self.client.post("/v1/events", json=body, headers=PUBLIC, name="/v1/events")

    @task(5)
    def home(self) -> None:
        self.client.get("/v1/recommendations", params={"visitor_id": self.visitor},
                        headers=PUBLIC, name="/v1/recommendations home")  # fmt: skip

    @task(4)
    def product_page(self) -> None:
        item = random.choice(ITEMS)
        self.event("view", item_id=item)
        self.client.get(
            "/v1/recommendations",
            params={"visitor_id": self.visitor, "placement": "product", "item_id": item},
            headers=PUBLIC,
            name="/v1/recommendations product",
        )

    @task(1)
    def add_to_cart(self) -> None:
        self.event("add_to_cart", item_id=random.choice(ITEMS))
        self.client.get("/v1/recommendations",
                        params={"visitor_id": self.visitor, "placement": "cart"},
                        headers=PUBLIC, name="/v1/recommendations cart")  # fmt: skip

    @task(2)
    def content(self) -> None:
        self.client.get("/v1/content", params={"visitor_id": self.visitor, "slot": "home_hero"},
                        headers=PUBLIC, name="/v1/content")  # fmt: skip

    @task(1)
    def offers(self) -> None:
        self.client.get("/v1/offers", params={"visitor_id": self.visitor}, headers=PUBLIC,
                        name="/v1/offers")  # fmt: skip


class EmailRenderer(FastHttpUser):
    """A campaign send: products for a hundred recipients per call."""

    weight = 1
    wait_time = between(1.0, 3.0)

    @task
    def batch(self) -> None:
        requests = [{"visitor_id": returning_visitor(), "placement": "email", "limit": 4}
                    for _ in range(100)]  # fmt: skip
        self.client.post("/v1/recommendations/batch", json={"requests": requests},
                         headers=SECRET, name="/v1/recommendations/batch")  # fmt: skip


class Operator(FastHttpUser):
    """Dashboards and back office: segments, profiles, stock changes, health."""

    weight = 1
    wait_time = between(2.0, 5.0)

    @task(3)
    def segments(self) -> None:
        self.client.get("/v1/segments", headers=SECRET, name="/v1/segments")

    @task(3)
    def profile(self) -> None:
        """Most of a million possible visitors were never seen: 404 is a right answer."""
        path = f"/v1/visitors/{returning_visitor()}"
        name = "/v1/visitors/[id]"
        with self.client.get(path, headers=SECRET, name=name, catch_response=True) as response:
            if response.status_code in (200, 404):
                response.success()

    @task(1)
    def restock(self) -> None:
        item = {"item_id": random.choice(ITEMS), "in_stock": True}
        self.client.put("/v1/items", json={"items": [item]}, headers=SECRET, name="/v1/items")

    @task(2)
    def ready(self) -> None:
        self.client.get("/readyz", name="/readyz")

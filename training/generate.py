"""A synthetic store whose shoppers behave like shoppers, for demos, tests and benchmarks.

Each visitor has latent tastes (a few favourite categories and a price band), browses in
sessions (views -> cart -> purchase funnels), may sign up as a customer, buys again or
lapses, all spread over twelve months. Purchases often pair an item with one from the
same product line, so "bought together" has something real to find. Everything is
seeded, and events are written as they are made, so ten million of them never sit in
memory.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from models.weights import SECONDS_PER_DAY
from training.datafiles import write_jsonl

# Category -> the noun its product titles use.
CATEGORIES_NOUNS = {
    "sweaters": "Sweater", "dresses": "Dress", "shoes": "Sneaker", "bags": "Tote",
    "jewelry": "Necklace", "skincare": "Serum", "makeup": "Lipstick", "fragrance": "Perfume",
    "kitchen": "Pan", "bedding": "Duvet", "lighting": "Lamp", "toys": "Puzzle",
    "books": "Novel", "garden": "Planter", "outdoor": "Tent", "fitness": "Yoga Mat",
}  # fmt: skip
CATEGORIES = list(CATEGORIES_NOUNS)
LINES = ["Alpine", "Harbor", "Meadow", "Ember", "Nordic", "Coral", "Sierra", "Willow"]
ADJECTIVES = ["Classic", "Soft", "Bold", "Everyday", "Premium", "Light", "Cosy", "Bright"]
PRICE_BANDS = [(5.0, 30.0), (30.0, 90.0), (90.0, 300.0)]


@dataclass(frozen=True)
class StoreShape:
    items: int = 2000
    visitors: int = 5000
    events: int = 200_000
    seed: int = 42
    end: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    days: int = 365


@dataclass
class Catalog:
    items: list[dict[str, Any]]
    by_category: dict[str, list[int]]
    cum_weights: dict[tuple[str, int], list[float]]  # (category, price band) -> popularity
    by_line: dict[tuple[str, str], list[int]]


def make_catalog(shape: StoreShape, rng: random.Random) -> Catalog:
    items: list[dict[str, Any]] = []
    for n in range(shape.items):
        category = (
            CATEGORIES[n % len(CATEGORIES)] if n < len(CATEGORIES) else rng.choice(CATEGORIES)
        )
        band = rng.choices([0, 1, 2], weights=[0.45, 0.4, 0.15])[0]
        low, high = PRICE_BANDS[band]
        line = rng.choice(LINES)
        item_id = f"i{n:06d}"
        items.append(
            {
                "item_id": item_id,
                "title": f"{line} {rng.choice(ADJECTIVES)} {CATEGORIES_NOUNS[category]} {n}",
                "category": category,
                "price": round(rng.uniform(low, high), 2),
                "url": f"https://shop.example/p/{item_id}",
                "image_url": f"https://shop.example/img/{item_id}.jpg",
                "in_stock": rng.random() > 0.03,
                "tags": [line.lower(), ["budget", "mid", "luxury"][band]],
                "attributes": {"line": line, "price_band": band},
            }
        )
    by_category: dict[str, list[int]] = {c: [] for c in CATEGORIES}
    by_line: dict[tuple[str, str], list[int]] = {}
    for i, item in enumerate(items):
        by_category[item["category"]].append(i)
        by_line.setdefault((item["category"], item["attributes"]["line"]), []).append(i)
    cum_weights: dict[tuple[str, int], list[float]] = {}
    popularity = [1.0 / (1 + rank) ** 0.9 for rank in rng.sample(range(len(items)), len(items))]
    for category, members in by_category.items():
        for band in range(3):
            weights = [
                popularity[i] * (4.0 if items[i]["attributes"]["price_band"] == band else 1.0)
                for i in members
            ]
            cum_weights[(category, band)] = list(itertools.accumulate(weights))
    return Catalog(items, by_category, cum_weights, by_line)


@dataclass
class Shopper:
    visitor_id: str
    customer_id: str | None
    tastes: list[float]  # cumulative weights over CATEGORIES
    band: int
    start: float
    end: float
    sessions: int
    buyer: float  # propensity to turn a cart into an order


class EventWriter:
    """Numbers events and stops the run once the target count is reached."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def make(
        self, kind: str, shopper: Shopper, at: float, signed_up: bool, **fields: Any
    ) -> dict[str, Any]:
        self.count += 1
        event: dict[str, Any] = {
            "event_id": f"e{self.count:09d}",
            "type": kind,
            "visitor_id": shopper.visitor_id,
            "timestamp": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds"),
        }
        if signed_up and shopper.customer_id:
            event["customer_id"] = shopper.customer_id
        event.update(fields)
        return event


def make_shopper(n: int, shape: StoreShape, rng: random.Random, mean_sessions: float) -> Shopper:
    end_ts = shape.end.timestamp()
    start_ts = end_ts - shape.days * SECONDS_PER_DAY
    tastes = [rng.gammavariate(0.25, 1.0) + 1e-6 for _ in CATEGORIES]
    start = rng.uniform(start_ts, end_ts - SECONDS_PER_DAY)
    lapses = rng.random() < 0.45
    end = min(end_ts, start + rng.expovariate(1 / 90) * SECONDS_PER_DAY) if lapses else end_ts
    return Shopper(
        visitor_id=f"v{n:07d}",
        customer_id=f"c{n:07d}" if rng.random() < 0.5 else None,
        tastes=list(itertools.accumulate(tastes)),
        band=rng.choices([0, 1, 2], weights=[0.45, 0.4, 0.15])[0],
        start=start,
        end=max(end, start + 3600),
        sessions=1 + int(rng.expovariate(1 / max(mean_sessions - 1, 0.1))),
        buyer=rng.betavariate(2, 3),
    )


def shopper_events(
    shopper: Shopper, catalog: Catalog, rng: random.Random, writer: EventWriter
) -> Iterator[dict[str, Any]]:
    """One shopper's whole history, in time order."""
    starts = sorted(rng.uniform(shopper.start, shopper.end) for _ in range(shopper.sessions))
    signed_up = False
    cart: dict[int, int] = {}
    orders = 0
    for session, at in enumerate(starts):
        category = CATEGORIES[bisect.bisect(shopper.tastes, rng.random() * shopper.tastes[-1])]
        members = catalog.by_category[category]
        weights = catalog.cum_weights[(category, shopper.band)]
        if shopper.customer_id and not signed_up and (session > 0 or rng.random() < 0.3):
            signed_up = True
            yield writer.make(
                "signup", shopper, at, signed_up, properties={"email_opt_in": rng.random() < 0.6}
            )
        if rng.random() < 0.15:
            at += 5
            yield writer.make("search", shopper, at, signed_up, query=category, category=category)
        for _ in range(1 + int(rng.expovariate(1 / 3.5))):
            at += rng.uniform(10, 120)
            index = members[bisect.bisect(weights, rng.random() * weights[-1])]
            item = catalog.items[index]
            yield writer.make(
                "view", shopper, at, signed_up, item_id=item["item_id"], category=category
            )
            if rng.random() < 0.03:
                yield writer.make(
                    "wishlist_add", shopper, at + 2, signed_up, item_id=item["item_id"]
                )
            if rng.random() < 0.15 + 0.1 * (item["attributes"]["price_band"] == shopper.band):
                at += 5
                cart[index] = cart.get(index, 0) + 1
                yield writer.make("add_to_cart", shopper, at, signed_up, item_id=item["item_id"])
        if cart and rng.random() < shopper.buyer:
            at += rng.uniform(30, 300)
            if not signed_up and shopper.customer_id:
                signed_up = True
                yield writer.make(
                    "signup", shopper, at - 10, signed_up, properties={"email_opt_in": True}
                )
            orders += 1
            yield _purchase(shopper, catalog, rng, writer, cart, at, signed_up, orders)
            cart = {}


def _purchase(
    shopper: Shopper,
    catalog: Catalog,
    rng: random.Random,
    writer: EventWriter,
    cart: dict[int, int],
    at: float,
    signed_up: bool,
    orders: int,
) -> dict[str, Any]:
    basket = dict(cart)
    for index in list(cart):
        item = catalog.items[index]
        partners = catalog.by_line[(item["category"], item["attributes"]["line"])]
        if len(partners) > 1 and rng.random() < 0.4:
            partner = rng.choice(partners)
            basket[partner] = basket.get(partner, 0) + 1
    lines = [
        {"item_id": catalog.items[i]["item_id"], "quantity": q, "price": catalog.items[i]["price"]}
        for i, q in basket.items()
    ]
    value = round(sum(line["price"] * line["quantity"] for line in lines), 2)
    order_id = f"o{shopper.visitor_id[1:]}-{orders}"
    return writer.make(
        "purchase",
        shopper,
        at,
        signed_up,
        items=lines,
        order_id=order_id,
        value=value,
        currency="USD",
    )


def generate_store(out: Path, shape: StoreShape) -> dict[str, int]:
    """Write `out/catalog.jsonl.gz` and `out/events.jsonl.gz`; return row counts."""
    rng = random.Random(shape.seed)
    catalog = make_catalog(shape, rng)
    write_jsonl(out / "catalog.jsonl.gz", catalog.items)
    events_per_session = 5.0
    mean_sessions = max(shape.events / max(shape.visitors, 1) / events_per_session, 1.0)
    writer = EventWriter(shape.events)

    def all_events() -> Iterator[dict[str, Any]]:
        with tqdm(total=shape.events, desc="generating events", unit="ev", unit_scale=True) as bar:
            for n in itertools.count():
                shopper = make_shopper(n, shape, rng, mean_sessions)
                for event in shopper_events(shopper, catalog, rng, writer):
                    yield event
                    bar.update(1)
                    if writer.count >= shape.events:
                        return

    written = write_jsonl(out / "events.jsonl.gz", all_events())
    return {"items": len(catalog.items), "events": written}

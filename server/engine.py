"""The serving model and the live catalog view, kept current without restarts.

A background task watches MODELS_DIR and loads a newer bundle off the event loop; the
swap is one attribute assignment, so a request in flight finishes with the recommender
it started with and no request ever fails for a retrain. Catalog changes are applied
from the Redis change log whenever the revision read in a request's pipeline moves.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faiss
from redis.asyncio import Redis

from models.bundle import Bundle, complete_bundles, load_bundle
from models.catalog import CatalogView
from models.churn import ChurnScorer
from models.recommend import Recommender
from server import heap
from server.periodic import Periodic
from settings import Settings
from state import catalog as catalog_store

log = logging.getLogger(__name__)

# One search thread per process: a server runs a worker per core already, and FAISS's
# OpenMP pool would otherwise fight them (measured: p50 1.78 -> 1.50 ms, one worker).
faiss.omp_set_num_threads(1)


class Engine:
    def __init__(
        self,
        redis: Redis,
        models_dir: Path,
        poll_seconds: float,
        replenishable: frozenset[str] = frozenset(),
        exclude_purchased: bool = True,
    ) -> None:
        self._redis = redis
        self._replenishable = replenishable
        self._exclude_purchased = exclude_purchased
        self._models_dir = models_dir
        self._live_items: dict[str, dict[str, Any]] = {}
        self._catalog_position = "0-0"
        self._catalog_rev: str | None = None
        self._catalog_lock = asyncio.Lock()
        self._watcher = Periodic("model reload", poll_seconds, self.reload_if_newer)
        self.recommender: Recommender | None = None
        self.churn: ChurnScorer | None = None  # from the same bundle, if it has the models
        # Every model version this process has served: clicks on their answers count.
        self.served_versions: frozenset[str] = frozenset()
        self.bundle_path: Path | None = None
        self._broken: set[Path] = set()  # bundles that failed to load: not retried

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> Engine:
        return cls(
            redis,
            settings.models_dir,
            settings.model_poll_seconds,
            frozenset(settings.replenishable_categories),
            settings.exclude_purchased,
        )

    @property
    def model_version(self) -> str | None:
        return self.recommender.bundle.version if self.recommender else None

    async def start(self) -> None:
        await self._load_catalog()
        await self.reload_if_newer()
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def reload_if_newer(self) -> bool:
        """Switch to the newest bundle that loads, if it is newer than the one served.

        A bundle that fails to load is logged, remembered and skipped, so one bad
        training run neither stops a server from starting nor retries every poll.
        """
        for path in complete_bundles(self._models_dir):
            if path == self.bundle_path:
                return False
            if path in self._broken:
                continue
            try:
                bundle = await asyncio.to_thread(load_bundle, path)
                churn = await asyncio.to_thread(ChurnScorer.in_bundle, path)
            except Exception:
                log.exception("bundle %s does not load; skipping it", path.name)
                self._broken.add(path)
                continue
            self.recommender = Recommender(
                bundle, self._view_for(bundle), self._replenishable, self._exclude_purchased
            )
            self.churn = churn
            self.served_versions = self.served_versions | {bundle.version}
            self.bundle_path = path
            heap.freeze_loaded()
            log.info(
                "serving model %s (%s, %d items)", bundle.version, bundle.model, bundle.n_items
            )
            return True
        return False

    async def sync_catalog(self, rev: str | None) -> None:
        """Apply catalog changes if the revision seen in Redis moved since the last sync."""
        if rev == self._catalog_rev:
            return
        async with self._catalog_lock:
            if rev == self._catalog_rev:
                return
            position, changed = await catalog_store.changes_since(
                self._redis, self._catalog_position
            )
            if changed is None:  # fell behind the capped log: start over
                await self._load_catalog()
                return
            self.apply_items(changed)
            self._catalog_position, self._catalog_rev = position, rev

    def item(self, item_id: str) -> dict[str, Any] | None:
        """An item as currently known: live catalog over the bundle's copy."""
        if item_id in self._live_items:
            return self._live_items[item_id]
        if self.recommender is not None:
            index = self.recommender.bundle.index_of.get(item_id)
            if index is not None:
                return self.recommender.catalog.items[index]
        return None

    async def _load_catalog(self) -> None:
        rev = await catalog_store.revision(self._redis)
        position, items = await catalog_store.all_items(self._redis)
        self._live_items = {item["item_id"]: item for item in items}
        self._catalog_position, self._catalog_rev = position, rev
        if self.recommender is not None:
            self.recommender.catalog = self._view_for(self.recommender.bundle)

    def apply_items(self, items: list[dict[str, Any]]) -> None:
        """Apply catalog changes: from the log, or just written by this process."""
        recommender = self.recommender
        for item in items:
            self._live_items[item["item_id"]] = item
            if recommender is not None:
                index = recommender.bundle.index_of.get(item["item_id"])
                if index is not None:
                    recommender.catalog.update(index, item)

    def _view_for(self, bundle: Bundle) -> CatalogView:
        view = CatalogView.from_items(bundle.items)
        for item_id, item in self._live_items.items():
            index = bundle.index_of.get(item_id)
            if index is not None:
                view.update(index, item)
        return view

"""The campaigns file in force, reloaded when it changes; a broken edit is refused.

The last good configuration stays in force until a valid file replaces it, and the
error that refused the edit is kept for operators to read (GET /v1/campaigns).
"""

from __future__ import annotations

import logging
from pathlib import Path

from campaigns.config import Campaigns, CampaignsError, load_campaigns
from server.periodic import Periodic

log = logging.getLogger(__name__)


class CampaignStore:
    def __init__(self, path: Path | None, poll_seconds: float) -> None:
        self.path = path
        self.current = Campaigns()
        self.last_error: str | None = None
        self.loaded_mtime: float | None = None
        self._watcher = Periodic("campaigns reload", poll_seconds, self._reload)

    def load_initial(self) -> None:
        """At start a broken file is fatal: better not to start than to run without it."""
        if self.path is not None:
            self.current = load_campaigns(self.path)
            self.loaded_mtime = self.path.stat().st_mtime

    def reload_if_changed(self) -> bool:
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            self.last_error = f"{self.path}: cannot read: {exc.strerror}"
            return False
        if mtime == self.loaded_mtime:
            return False
        self.loaded_mtime = mtime
        try:
            self.current = load_campaigns(self.path)
        except (CampaignsError, OSError) as exc:
            self.last_error = str(exc)
            log.error("campaigns file refused, keeping the previous one: %s", exc)
            return False
        except Exception as exc:  # a validator bug must not end hot reloading
            self.last_error = f"{self.path}: could not be read as campaigns: {exc!r}"
            log.error("campaigns file refused, keeping the previous one: %s", exc)
            return False
        self.last_error = None
        log.info("campaigns file reloaded: %d segments, %d offers", len(self.current.segments),
                 len(self.current.offers))  # fmt: skip
        return True

    def start(self) -> None:
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def _reload(self) -> None:
        self.reload_if_changed()

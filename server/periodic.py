"""A background task that runs a check every few seconds and survives its failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, seconds: float, check: Callable[[], Awaitable[object]]) -> None:
        self._name = name
        self._seconds = seconds
        self._check = check
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._seconds)
            try:
                await self._check()
            except Exception:  # keep watching: the next round may succeed
                log.exception("%s failed; trying again in %.1f s", self._name, self._seconds)

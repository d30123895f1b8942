"""Background work owned by an async context manager: started on enter, cancelled and awaited on exit."""

from __future__ import annotations

import asyncio
import logging
from typing import Self

logger = logging.getLogger(__name__)


class Background:
    """Runs ``self.run()`` in one task from ``async with`` entry to exit, so no task outlives its owner."""

    task_name = "background"
    _task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """The work, until cancelled."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name=self.task_name)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

"""A periodic job that exactly one server process runs: the leader, elected by a PostgreSQL advisory lock.

The lock is held on a dedicated connection: when the leader dies its connection drops, the lock frees,
and another process (retrying every ``retry_s``) takes over. The alert engine and the forecast job run
this way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from ioc.background import Background

logger = logging.getLogger(__name__)

DB_ERRORS: tuple[type[Exception], ...] = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class LeaderJob(Background):
    """Runs ``work`` in rounds while this process holds advisory lock ``lock_key`` (an async context manager).

    A round starts every ``interval()`` seconds (from the start of the one before), sooner when ``wake()`` is
    called, and never within ``min_gap_s`` of the one before. A round that raises one of ``errors`` is logged
    and the next one runs as planned; losing the lock's connection ends the lead. ``on_lead(True)`` is called
    on taking the lead, before the first round; ``on_lead(False)`` whenever this process is not the leader.
    """

    def __init__(
        self,
        name: str,
        database_url: str,
        lock_key: int,
        work: Callable[[], Awaitable[None]],
        *,
        interval: Callable[[], float],
        retry_s: float,
        min_gap_s: float = 0.0,
        errors: tuple[type[Exception], ...] = DB_ERRORS,
        on_lead: Callable[[bool], None] | None = None,
    ) -> None:
        self.name = self.task_name = name
        self.database_url = database_url
        self.lock_key = lock_key
        self.work = work
        self.interval = interval
        self.retry_s = retry_s
        self.min_gap_s = min_gap_s
        self.errors = errors
        self.on_lead = on_lead
        self.leader = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Run the next round now (or as soon as ``min_gap_s`` allows) rather than at its time."""
        self._wake.set()

    async def run(self) -> None:
        """Try to take the lock every ``retry_s``; lead while it is held."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.database_url, timeout=10)
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
                    await self._lead(conn)
            except DB_ERRORS as exc:
                logger.warning("%s: %s", self.name, exc)
            finally:
                if self.leader:
                    logger.warning("%s: leadership lost", self.name)
                self._set_leader(False)
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(self.retry_s)

    async def _lead(self, lock: asyncpg.Connection) -> None:
        self._set_leader(True)
        logger.info("%s: this process is the leader", self.name)
        while True:
            started = time.monotonic()
            await lock.fetchval("SELECT 1", timeout=5)  # a dead lock connection means we are no longer leader
            try:
                await self.work()
            except self.errors as exc:
                logger.warning("%s: round failed: %s", self.name, exc)
            self._wake.clear()
            remaining = self.interval() - (time.monotonic() - started)
            if remaining > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    pass
            await asyncio.sleep(max(0.0, self.min_gap_s - (time.monotonic() - started)))

    def _set_leader(self, leader: bool) -> None:
        self.leader = leader
        if self.on_lead is not None:
            self.on_lead(leader)

"""The live server's chores beside serving: refusal summaries, audit retention, throttle counters.

Every ``ioc serve`` process runs them (the deletes are idempotent, so several servers may overlap):
every ``tick_s`` the audit rows of refusals counted in a closed minute are written; at start-up and
then every ``prune_every_s``, audit entries older than IOC_AUDIT_RETENTION_DAYS and login-throttle
counters nobody needs any more are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

import asyncpg

from ioc import audit
from ioc.background import Background
from ioc.throttle import ThrottlePolicy, prune_throttle

logger = logging.getLogger(__name__)


class Housekeeping(Background):
    """An async context manager running the chores in one task, cancelled and awaited on exit."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        refusals: audit.RefusalLog,
        audit_keep: timedelta,
        throttle: ThrottlePolicy,
        *,
        tick_s: float = 5.0,
        prune_every_s: float = 3600.0,
    ) -> None:
        self.pool = pool
        self.refusals = refusals
        self.audit_keep = audit_keep
        self.throttle = throttle
        self.tick_s = tick_s
        self.prune_every_s = prune_every_s

    task_name = "housekeeping"

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await self.refusals.flush(self.pool, now=True)  # the open minute's counts are not lost

    async def prune(self) -> tuple[int, int]:
        """Apply the audit retention and drop stale throttle counters; returns (audit rows, counters) removed."""
        entries = await audit.prune(self.pool, self.audit_keep)
        counters = await prune_throttle(self.pool, self.throttle)
        if entries or counters:
            logger.info(
                "pruned %d audit entries older than %s, %d throttle counters",
                entries,
                self.audit_keep,
                counters,
            )
        return entries, counters

    async def run(self) -> None:
        """Flush refusal summaries every ``tick_s``; prune every ``prune_every_s``."""
        last_prune = -self.prune_every_s
        while True:
            try:
                await self.refusals.flush(self.pool)
                if time.monotonic() - last_prune >= self.prune_every_s:
                    last_prune = time.monotonic()
                    await self.prune()
            except (OSError, asyncpg.PostgresError) as exc:  # the database is away: try again next tick
                logger.warning("housekeeping failed, retrying: %s", exc)
            await asyncio.sleep(self.tick_s)

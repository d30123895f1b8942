"""Beside the hot path: heartbeat, rollups, retention and registry refresh, each on its own period."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

import asyncpg

from ingest.connections import DB_DOWN
from ingest.registry import DeviceRegistry
from ingest.rollups import apply_retention, refresh
from ioc.db import REGISTRY_CHANNEL, init_connection
from ioc.settings import Settings

logger = logging.getLogger(__name__)

TICK_S = 5.0  # also the heartbeat period
ROLLUP_EVERY_S = 5.0
REGISTRY_EVERY_S = 60.0  # besides every notice on REGISTRY_CHANNEL
RETENTION_EVERY_S = 3600.0
RETENTION_FIRST_S = 300.0  # the first retention pass, after start
HEARTBEAT = """
INSERT INTO ingest_workers (worker_id, started_at, heartbeat_at, stats) VALUES ($1, $2, now(), $3)
ON CONFLICT (worker_id) DO UPDATE SET started_at = EXCLUDED.started_at, heartbeat_at = now(), stats = EXCLUDED.stats
"""


class Housekeeping:
    """One connection of its own, reconnected after an outage; a failed chore is logged and tried next tick."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        worker_id: str,
        started_at: datetime,
        health: Callable[[], dict[str, object]],
        registry: DeviceRegistry,
    ) -> None:
        self.settings = settings
        self.url = url
        self.worker_id = worker_id
        self.started_at = started_at
        self.health = health
        self.registry = registry
        now = time.monotonic()
        self._last = {"rollup": 0.0, "retention": now - RETENTION_EVERY_S + RETENTION_FIRST_S, "registry": now}

    async def run(self) -> None:
        """Tick forever."""
        conn: asyncpg.Connection | None = None
        while True:
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.url, timeout=3)
                    await init_connection(conn)
                    await conn.add_listener(REGISTRY_CHANNEL, self.registry.on_notice)
                await self.tick(conn)
            except DB_DOWN as exc:
                logger.debug("housekeeping: database unavailable (%s)", exc)
                if conn is not None:
                    conn.terminate()
                conn = None
            except asyncpg.PostgresError:
                logger.exception("housekeeping failed")
            await asyncio.sleep(TICK_S)

    async def tick(self, conn: asyncpg.Connection) -> None:
        """Heartbeat, then each chore whose period is over."""
        await conn.execute(HEARTBEAT, self.worker_id, self.started_at, self.health())
        if self._due("rollup", ROLLUP_EVERY_S):
            await refresh(conn)
        if self._due("registry", REGISTRY_EVERY_S):
            await self.registry.load(conn)
        if self._due("retention", RETENTION_EVERY_S):
            await apply_retention(conn, self.settings.retention_raw_days, self.settings.retention_rollup_days)

    def _due(self, chore: str, every_s: float) -> bool:
        """True (and the chore's clock restarted) when ``every_s`` passed since it last ran."""
        now = time.monotonic()
        if now - self._last[chore] < every_s:
            return False
        self._last[chore] = now
        return True

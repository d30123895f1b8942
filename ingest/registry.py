"""The device registry as the ingest sees it: kept in memory, reloaded on notice, asked for newcomers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import asyncpg

from ingest.connections import DB_DOWN
from ingest.ratelimit import RateLimiter
from ingest.validation import DeviceInfo

logger = logging.getLogger(__name__)

UNKNOWN_TTL_S = 10.0  # an id found in neither the registry nor the database is not looked up again for this long
UNKNOWN_MAX = 10_000  # remembered unknown ids at most (then forgotten at once)
LOOKUPS_PER_S = 50  # database lookups of ids missing from memory, at most
FIND = "SELECT kind, format, enabled, metadata->>'hardware_id' AS hardware_id FROM devices WHERE device_id = $1"
AUTO_REGISTER = """
INSERT INTO devices (device_id, kind, format, name, metadata)
VALUES ($1, $2, $3, $1, '{"auto_registered": true}'::jsonb) ON CONFLICT (device_id) DO NOTHING
"""


def _info(device_id: str, row: asyncpg.Record) -> DeviceInfo:
    return DeviceInfo(device_id, row["kind"], row["format"], row["enabled"], row["hardware_id"])


class AuxConnection(Protocol):
    """Gives the connection used beside the writers, held for the duration of the block."""

    def __call__(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """Hold the auxiliary connection."""
        ...


class DeviceRegistry:
    """The ``devices`` table in memory, by device id."""

    def __init__(self, kinds: Collection[str], auto_register: bool, aux: AuxConnection) -> None:
        self.kinds = kinds
        self.auto_register = auto_register
        self.devices: dict[str, DeviceInfo] = {}
        self._aux = aux
        self._unknown: dict[str, float] = {}  # device id -> monotonic time until which it is known unknown
        self._lookups = RateLimiter(LOOKUPS_PER_S, int(LOOKUPS_PER_S))  # one bucket, key "lookup"

    async def load(self, conn: asyncpg.Connection) -> None:
        """Read the device registry into memory."""
        rows = await conn.fetch(
            "SELECT device_id, kind, format, enabled, metadata->>'hardware_id' AS hardware_id FROM devices"
        )
        self.devices = {r["device_id"]: _info(r["device_id"], r) for r in rows}
        self._unknown.clear()
        logger.info("device registry loaded", extra={"devices": len(self.devices)})

    async def lookup(self, device_id: str, kind: str | None, fmt: str) -> DeviceInfo | None:
        """A device missing from memory: registered a moment ago, auto-registered, or unknown.

        The registry reload after ``ioc devices import`` is asynchronous; a device that publishes at once
        must not be quarantined for it, so the database is asked. Unknown ids are remembered for
        UNKNOWN_TTL_S and lookups are capped per second: a stream of made-up ids cannot load the database.
        """
        now = time.monotonic()
        if self._unknown.get(device_id, 0.0) > now:
            return None
        if self.auto_register:
            return await self._register(device_id, kind, fmt)
        if not self._lookups.allow("lookup", now):
            return None
        try:
            async with self._aux() as conn:
                row = await conn.fetchrow(FIND, device_id)
        except (asyncpg.PostgresError, *DB_DOWN):
            return None
        if row is None:
            if len(self._unknown) >= UNKNOWN_MAX:
                self._unknown.clear()
            self._unknown[device_id] = now + UNKNOWN_TTL_S
            return None
        return self._remember(device_id, row)

    async def _register(self, device_id: str, kind: str | None, fmt: str) -> DeviceInfo | None:
        """Register an unknown device (setting IOC_INGEST_AUTO_REGISTER) when its kind is known."""
        if kind not in self.kinds:
            return None
        try:
            async with self._aux() as conn:
                await conn.execute(AUTO_REGISTER, device_id, kind, fmt)
                row = await conn.fetchrow(FIND, device_id)
        except DB_DOWN:
            return None
        logger.info("auto-registered device %s as %s", device_id, kind)
        return self._remember(device_id, row)

    def _remember(self, device_id: str, row: asyncpg.Record) -> DeviceInfo:
        info = _info(device_id, row)
        self.devices[device_id] = info
        return info

    def on_notice(self, conn: object, pid: int, channel: str, payload: str) -> None:
        """LISTEN callback of ``ioc.db.REGISTRY_CHANNEL``: reload in the background."""
        asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> None:
        """Reload the registry on the auxiliary connection; a failure is logged (the next period retries)."""
        try:
            async with self._aux() as conn:
                await self.load(conn)
        except (asyncpg.PostgresError, *DB_DOWN) as exc:
            logger.warning("registry reload failed: %s", exc)

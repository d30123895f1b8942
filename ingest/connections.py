"""The worker's database connections: one per writer, reconnected with backoff, and one beside them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from ingest import metrics
from ingest.writer import Throttles, Writer
from ioc.backoff import Backoff
from ioc.db import describe, init_connection

logger = logging.getLogger(__name__)

# Errors meaning "the database is not there right now" (spool and retry), as opposed to a bad row.
# InternalClientError: the server's shutdown message reached an idle connection, which is now unusable.
DB_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InternalClientError,
)


def _writer_backoff() -> Backoff:
    return Backoff(first=0.5, ceiling=5.0)


@dataclass(slots=True)
class Slot:
    """One writer's database connection (several writers commit batches concurrently)."""

    index: int
    conn: asyncpg.Connection | None = None
    writer: Writer | None = None
    next_connect: float = 0.0
    retry: Backoff = field(default_factory=_writer_backoff)

    @property
    def up(self) -> bool:
        """True while the connection is open."""
        return self.conn is not None and not self.conn.is_closed()


class Connections:
    """The writer slots and the auxiliary connection of one worker."""

    def __init__(
        self,
        url: str,
        worker_id: str,
        writers: int,
        throttles: Throttles,
        on_connect: Callable[[asyncpg.Connection], Awaitable[None]],
        spool_dir: Path,
    ) -> None:
        self.url = url
        self.worker_id = worker_id
        self.throttles = throttles
        self.slots = [Slot(i) for i in range(writers)]
        self._on_connect = on_connect  # runs on each new writer connection (loads the device registry)
        self._spool_dir = spool_dir
        self._aux_lock = asyncio.Lock()
        self._aux: asyncpg.Connection | None = None

    async def ensure(self, slot: Slot) -> bool:
        """True when ``slot``'s writer connection is usable; reconnects with backoff otherwise."""
        if slot.up:
            return True
        if time.monotonic() < slot.next_connect:
            return False
        try:
            conn = await asyncpg.connect(self.url, timeout=3, command_timeout=60)
            await init_connection(conn)
            writer = Writer(conn, self.worker_id, self.throttles)
            await writer.prepare()
            await self._on_connect(conn)
        except DB_DOWN as exc:
            slot.next_connect = time.monotonic() + slot.retry.failed()
            metrics.DB_UP.set(0)
            logger.warning("database unavailable (%s): spooling to %s", exc, self._spool_dir)
            return False
        slot.conn, slot.writer = conn, writer
        slot.retry.succeeded()
        metrics.DB_UP.set(1)
        logger.info("database connected", extra={"database": describe(self.url), "writer": slot.index})
        return True

    def lost(self, slot: Slot, exc: BaseException) -> None:
        """Forget a writer connection after a connection-level failure."""
        logger.warning("database connection lost (%s): spooling", exc)
        metrics.DB_UP.set(0)
        if slot.conn is not None:
            slot.conn.terminate()
        slot.conn = slot.writer = None
        slot.next_connect = time.monotonic() + slot.retry.upcoming

    @contextlib.asynccontextmanager
    async def aux(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection for occasional work beside the writers (registry reloads, auto-registration), held."""
        async with self._aux_lock:
            if self._aux is None or self._aux.is_closed():
                self._aux = await asyncpg.connect(self.url, timeout=3)
                await init_connection(self._aux)
            yield self._aux

    @property
    def any_up(self) -> bool:
        """True when some writer holds an open connection."""
        return any(slot.up for slot in self.slots)

    async def close(self) -> None:
        """Close every connection."""
        for conn in (*(slot.conn for slot in self.slots), self._aux):
            if conn is not None:
                await conn.close()

"""One transaction per batch; when the database rejects a batch, its items are retried one by one."""

from __future__ import annotations

import logging

import asyncpg

from ingest.connections import DB_DOWN, Slot
from ingest.counters import Counters
from ingest.pipeline import Item, Pipeline, to_batch
from ioc.reasons import Reason

logger = logging.getLogger(__name__)


class Committer:
    """Writes items through a writer slot and counts what was stored; DB_DOWN errors go to the caller."""

    def __init__(self, pipeline: Pipeline, counters: Counters) -> None:
        self.pipeline = pipeline
        self.counters = counters

    async def commit(self, slot: Slot, items: list[Item]) -> None:
        """Write items in one transaction; a batch the database rejects is retried item by item."""
        writer = slot.writer
        assert writer is not None
        policy = self.pipeline.quarantine.policy
        try:
            result = await writer.write(to_batch(items, policy))
        except DB_DOWN:
            raise
        except asyncpg.PostgresError as exc:
            logger.error("database rejected a batch of %d messages (%s): retrying one by one", len(items), exc)
            await self._one_by_one(slot, items)
            return
        self.counters.committed(items, result)

    async def _one_by_one(self, slot: Slot, items: list[Item]) -> None:
        """Commit each item alone; one the database still refuses is quarantined as ``db_rejected``."""
        writer = slot.writer
        assert writer is not None
        policy = self.pipeline.quarantine.policy
        for it in items:
            try:
                self.counters.committed([it], await writer.write(to_batch([it], policy)))
            except DB_DOWN:
                raise
            except asyncpg.PostgresError as exc:
                detail = str(exc)[:200]
                rejected = self.pipeline.rejected(it.raw, it.received, Reason.DB_REJECTED, detail, it.device_id)
                self.counters.committed([rejected], await writer.write(to_batch([rejected], policy)))

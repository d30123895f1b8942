"""While the database is away: batches go to the on-disk spool in receive order, and are replayed in order."""

from __future__ import annotations

import asyncio
import logging

from ingest.commits import Committer
from ingest.connections import DB_DOWN, Connections, Slot
from ingest.counters import Counters
from ingest.pipeline import Pipeline
from ingest.spool import Spool, SpoolFull
from ioc.records import RawMessage

logger = logging.getLogger(__name__)

FULL_RETRY_S = 1.0  # with the spool full, how often the writer tries the database again


class Spooler:
    """Appends to and replays the spool; one at a time (``lock``), so the order is kept."""

    def __init__(
        self,
        spool: Spool,
        connections: Connections,
        pipeline: Pipeline,
        committer: Committer,
        counters: Counters,
        replay_batch: int,
    ) -> None:
        self.spool = spool
        self.connections = connections
        self.pipeline = pipeline
        self.committer = committer
        self.counters = counters
        self.replay_batch = replay_batch
        self.lock = asyncio.Lock()

    async def append(self, slot: Slot, raws: list[RawMessage]) -> None:
        """Spool a batch (fsynced); with the spool full, stop consuming until the database takes it back."""
        async with self.lock:
            while True:
                try:
                    self.spool.append(raws)
                    break
                except SpoolFull as exc:
                    # Stop consuming: unacked messages stay queued at the broker for our session.
                    logger.error("%s: waiting for the database", exc)
                    while not await self.connections.ensure(slot):  # noqa: ASYNC110 - polling a reconnect with backoff
                        await asyncio.sleep(FULL_RETRY_S)
                    while self.spool:
                        await self.replay_segment(slot)
        self.counters.spooled(len(raws), self.spool.depth_bytes)

    async def replay(self, slot: Slot) -> None:
        """Replay the oldest segment, holding the lock."""
        async with self.lock:
            await self.replay_segment(slot)

    async def replay_segment(self, slot: Slot) -> None:
        """Replay the oldest spool segment in order, then delete it (the caller holds ``lock``)."""
        oldest = self.spool.oldest()
        if oldest is None:
            return
        segment, messages = oldest
        step = self.replay_batch
        try:
            for start in range(0, len(messages), step):
                chunk = messages[start : start + step]
                await self.committer.commit(slot, await self.pipeline.decode_all(chunk, rate_limit=False))
        except DB_DOWN as exc:
            self.connections.lost(slot, exc)
            return
        self.spool.remove(segment)
        self.counters.replayed(len(messages), self.spool.depth_bytes)
        logger.info("replayed spool segment", extra={"segment": segment.name, "messages": len(messages)})

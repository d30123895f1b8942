"""The writer tasks: commit each batch and ack it in order, or spool it while the database is away."""

from __future__ import annotations

import asyncio
import logging

from ingest.acks import AckSequencer
from ingest.batching import Batches
from ingest.commits import Committer
from ingest.connections import DB_DOWN, Connections, Slot
from ingest.pipeline import Item
from ingest.spooling import Spooler

logger = logging.getLogger(__name__)

IDLE_S = 0.5  # writer 0, and a writer with throttled latest values, look for work without a batch this often


class Writers:
    """Runs one loop per writer slot."""

    def __init__(
        self, connections: Connections, batches: Batches, committer: Committer, spooler: Spooler, acks: AckSequencer
    ) -> None:
        self.connections = connections
        self.batches = batches
        self.committer = committer
        self.spooler = spooler
        self.acks = acks

    async def run(self, slot: Slot) -> None:
        """One writer: commit batches (or spool them); writer 0 also replays the spool when the database is back."""
        spool = self.spooler.spool
        while True:
            if spool and slot.index == 0 and await self.connections.ensure(slot):
                await self.spooler.replay(slot)
                continue
            latest_pending = slot.writer is not None and bool(slot.writer.latest_pending)
            # Writer 0 never waits for a batch unboundedly: another writer may spool one at any moment (it saw
            # the spool non-empty just before a replay emptied it), and it must not wait for the next message.
            idle_work = slot.index == 0 or bool(spool) or latest_pending
            queue = self.batches.queue
            try:
                seq, items = await asyncio.wait_for(queue.get(), IDLE_S) if idle_work else await queue.get()
            except TimeoutError:
                if not spool and latest_pending:
                    await self.flush_latest(slot)
                continue
            with self.batches.writing_one():
                await self.handle(slot, seq, items)

    async def flush_latest(self, slot: Slot) -> None:
        """Write latest values held back by the throttle (an empty batch)."""
        if await self.connections.ensure(slot):
            try:
                await self.committer.commit(slot, [])
            except DB_DOWN as exc:
                self.connections.lost(slot, exc)

    async def handle(self, slot: Slot, seq: int, items: list[Item]) -> None:
        """Commit one batch and ack it in order; on a database outage spool it (in order), then ack."""
        raws = [it.raw for it in items]
        if not self.spooler.spool and await self.connections.ensure(slot):
            try:
                await self.committer.commit(slot, items)
                await self.acks.complete(seq, raws)
                return
            except DB_DOWN as exc:
                self.connections.lost(slot, exc)
        await self.acks.turn(seq)  # every earlier batch is committed or spooled: the spool stays in order
        await self.spooler.append(slot, raws)
        await self.acks.complete(seq, raws)

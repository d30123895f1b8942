"""Group commit: the collector takes messages from the bridge in batches that grow with the load."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from ingest.acks import AckSequencer
from ingest.bridge import Bridge
from ingest.counters import Counters
from ingest.pipeline import Item, Pipeline

GATHER_POLL_S = 0.002


class Batches:
    """The queue from the collector to the writers, and how many writers are writing."""

    def __init__(self, writers: int) -> None:
        self.queue: asyncio.Queue[tuple[int, list[Item]]] = asyncio.Queue(maxsize=writers + 1)
        self.writers = writers
        self.writing = 0

    def writer_idle(self) -> bool:
        """True when a writer would take a batch now (none queued, one not writing)."""
        return self.queue.empty() and self.writing < self.writers

    def busy(self) -> bool:
        """True while a batch is queued or being written."""
        return not self.queue.empty() or self.writing > 0

    @contextlib.contextmanager
    def writing_one(self) -> Iterator[None]:
        """Count a writer as busy for the block."""
        self.writing += 1
        try:
            yield
        finally:
            self.writing -= 1


class Collector:
    """Takes messages from the bridge, decodes them and queues them, numbered, for the writers."""

    def __init__(
        self,
        bridge: Bridge,
        pipeline: Pipeline,
        batches: Batches,
        acks: AckSequencer,
        counters: Counters,
        *,
        limit: int,
        wait_s: float,
    ) -> None:
        self.bridge = bridge
        self.pipeline = pipeline
        self.batches = batches
        self.acks = acks
        self.counters = counters
        self.limit = limit
        self.wait_s = wait_s

    async def run(self) -> None:
        """Collect forever.

        When a writer is idle the batch goes at once (low latency at low rates); while every writer is
        busy it keeps growing, up to IOC_INGEST_BATCH_MAX messages or IOC_INGEST_BATCH_WAIT_MS, so
        batches grow with the load and commits keep up.
        """
        loop = asyncio.get_running_loop()
        limit, batches = self.limit, self.batches
        while True:
            await self.bridge.ready.wait()
            await asyncio.sleep(0)  # let the bridge read what has already arrived
            items = await self._decode_taken(limit)
            deadline = loop.time() + self.wait_s
            # Decode as messages come while every writer is busy, so the batch is ready the moment one frees.
            while len(items) < limit and not batches.writer_idle() and loop.time() < deadline:
                await asyncio.sleep(GATHER_POLL_S)
                items += await self._decode_taken(limit - len(items))
            if items:
                await batches.queue.put((self.acks.number(), items))

    async def _decode_taken(self, limit: int) -> list[Item]:
        """Decode up to ``limit`` buffered messages."""
        messages = self.bridge.take(limit)
        if not messages:
            return []
        self.counters.received(len(messages))
        t0 = time.perf_counter()
        items = await self.pipeline.decode_all(messages, rate_limit=True)
        self.counters.decoded(time.perf_counter() - t0)
        return items

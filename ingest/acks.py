"""Acknowledgements in receive order: the broker hears about a batch only after it is committed or spooled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ioc.records import RawMessage


class AckSequencer:
    """Acknowledges batches in the order they were received, whichever writer finishes first.

    MQTT wants PUBACKs in receive order; batches are numbered by the collector and released in sequence.
    """

    def __init__(self, ack: Callable[[list[RawMessage]], None]) -> None:
        self._ack = ack
        self._issued = 0
        self._next = 0
        self._done: dict[int, list[RawMessage]] = {}
        self._changed = asyncio.Condition()

    def number(self) -> int:
        """The next batch number."""
        self._issued += 1
        return self._issued - 1

    async def turn(self, seq: int) -> None:
        """Wait until every batch before ``seq`` is complete."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._next >= seq)

    async def complete(self, seq: int, raws: list[RawMessage]) -> None:
        """Mark ``seq`` committed (or spooled) and ack every batch now in order."""
        async with self._changed:
            self._done[seq] = raws
            while self._next in self._done:
                self._ack(self._done.pop(self._next))
                self._next += 1
            self._changed.notify_all()

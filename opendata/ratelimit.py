"""Fairness: a token bucket per client (the open data's per-address and per-key request rates), and a gate that
bounds how many requests are at work at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RateLimiter:
    """A token bucket per client address: ``rate`` requests per minute, bursts of ``burst``."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str, now: float | None = None) -> float:
        """0 when ``client`` may go on, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self.buckets) >= self.max_clients and client not in self.buckets:
            self._forget_full(now)
        self.buckets[client] = (tokens - 1, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: they hold no state worth keeping."""
        full = [c for c, (t, last) in self.buckets.items() if t + (now - last) * self.rate >= self.burst]
        for client in full:
            del self.buckets[client]


class Gate:
    """At most ``running`` requests at work and ``waiting`` more in line; a request beyond those is shed at once
    (the caller answers 503 with Retry-After), so a burst costs a refusal, not a queue of work the CPU owes."""

    def __init__(self, running: int, waiting: int) -> None:
        self.limit = running
        self.line = waiting
        self.waiting = 0
        self.shed = 0
        self._slots = asyncio.Semaphore(running)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[bool]:
        """Yields True once the request may work (after waiting its turn), False when it is shed."""
        if self._slots.locked() and self.waiting >= self.line:
            self.shed += 1
            yield False
            return
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield True
        finally:
            self._slots.release()

    def status(self) -> dict[str, int]:
        """For health: the limits, who waits now and how many were shed."""
        return {"max_concurrent": self.limit, "max_waiting": self.line, "waiting": self.waiting, "shed": self.shed}

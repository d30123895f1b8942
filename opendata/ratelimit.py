"""A token bucket per client: the open data's per-address (and per-key) request rates."""

from __future__ import annotations

import time


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

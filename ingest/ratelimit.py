"""Per-device token buckets so one chatty or hostile device cannot starve the others."""

from __future__ import annotations

import logging
from itertools import islice

from ioc.settings import Settings

logger = logging.getLogger(__name__)


class _Bucket:
    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, last: float) -> None:
        self.tokens = tokens
        self.last = last


class RateLimiter:
    """A token bucket per device id (``rate_per_s`` refill, ``burst`` capacity) in bounded memory."""

    def __init__(self, rate_per_s: float, burst: int, *, max_devices: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1 or max_devices < 1:
            raise ValueError("rate_per_s must be > 0, burst >= 1 and max_devices >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_devices = max_devices
        # A bucket idle this long is full again, which is the same as having no bucket at all.
        self._refill_s = burst / rate_per_s
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        """The limiter configured by ``IOC_INGEST_RATE_LIMIT_PER_S`` and ``IOC_INGEST_RATE_BURST``."""
        return cls(settings.ingest_rate_limit_per_s, settings.ingest_rate_burst)

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, device_id: str, now: float) -> bool:
        """Take one token for ``device_id`` at monotonic time ``now``; False when its bucket is empty."""
        bucket = self._buckets.get(device_id)
        if bucket is None:
            if len(self._buckets) >= self.max_devices:
                self._evict(now)
            self._buckets[device_id] = _Bucket(self.burst - 1.0, now)
            return True
        elapsed = now - bucket.last
        if elapsed > 0.0:
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate_per_s)
            bucket.last = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def _evict(self, now: float) -> None:
        """Drop idle (hence full) buckets; if none is idle, drop the oldest tenth."""
        idle = [key for key, bucket in self._buckets.items() if now - bucket.last >= self._refill_s]
        if not idle:
            idle = list(islice(self._buckets, max(1, self.max_devices // 10)))
            logger.warning("rate limiter full with %d active devices; forgetting %d", len(self._buckets), len(idle))
        for key in idle:
            del self._buckets[key]

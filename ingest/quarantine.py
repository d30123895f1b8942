"""The quarantine budget: a sample of each device's bad messages is kept, the excess only counted.

Per (device, reason) and window of ``IOC_INGEST_QUARANTINE_WINDOW_S`` seconds, the first
``IOC_INGEST_QUARANTINE_SAMPLES`` messages become ``quarantine`` rows (payload cut to
``IOC_INGEST_QUARANTINE_SAMPLE_BYTES``, topic to TOPIC_CHARS), and at most
``IOC_INGEST_QUARANTINE_TOTAL_SAMPLES`` rows per window in all (many broken devices at once); later ones
add to one ``quarantine_overflow`` row (count, bytes, first and last time). The bytes a device, or the
whole fleet, can add to the database per window are thereby bounded whatever it sends (docs/devices.md,
"Quarantine budget").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ioc.reasons import Reason
from ioc.settings import Settings

logger = logging.getLogger(__name__)

TOPIC_CHARS = 256  # a topic stored in quarantine is cut to this many characters (MQTT allows 65,535 bytes)
NO_DEVICE = ""  # the device key of a message whose topic names no valid device


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    """How much of a device's bad traffic is kept: samples per (device, reason) and window, and their size."""

    samples: int = 10
    window_s: int = 3600
    sample_bytes: int = 2048
    total_samples: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> QuarantinePolicy:
        """The policy configured by ``IOC_INGEST_QUARANTINE_*``."""
        return cls(
            settings.ingest_quarantine_samples,
            settings.ingest_quarantine_window_s,
            settings.ingest_quarantine_sample_bytes,
            settings.ingest_quarantine_total_samples,
        )

    def window(self, received_at: float) -> float:
        """The start (epoch seconds) of the window holding ``received_at``."""
        return received_at - received_at % self.window_s


class QuarantineBudget:
    """Counts each (device, reason)'s quarantined messages in the current window, in bounded memory."""

    def __init__(self, policy: QuarantinePolicy, *, max_keys: int = 100_000) -> None:
        self.policy = policy
        self.max_keys = max_keys
        self._kept: dict[tuple[str, Reason], tuple[float, int]] = {}  # key -> (window start, samples kept)
        self._window = float("-inf")  # the newest window seen, and the samples kept in it for every key
        self._total = 0

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, device_id: str | None, reason: Reason, received_at: float) -> bool:
        """True when this message is still within its sample budget (keep it); False to only count it."""
        window = self.policy.window(received_at)
        key = (device_id or NO_DEVICE, reason)
        seen = self._kept.get(key)
        kept = seen[1] if seen is not None and seen[0] == window else 0
        if window > self._window:
            self._window, self._total = window, 0
        if kept >= self.policy.samples or self._total >= self.policy.total_samples:
            return False
        if seen is None and len(self._kept) >= self.max_keys:
            self._forget(window)
        self._kept[key] = (window, kept + 1)
        self._total += 1  # a replayed (older) window counts against the newest: conservative
        return True

    def _forget(self, window: float) -> None:
        """Drop the keys of past windows (they start afresh anyway); if none is past, drop them all."""
        old = [key for key, (start, _) in self._kept.items() if start != window]
        if not old:
            logger.warning("quarantine budget tracks %d keys in one window; starting afresh", len(self._kept))
            self._kept.clear()
        for key in old:
            del self._kept[key]

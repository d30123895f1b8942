"""What a device reports (a reading, a camera event) and the spelling every wire format shares: JSON, UTC times."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Reading:
    """One telemetry report: wall-clock time, sequence number, metrics and per-lane metrics."""

    ts: datetime
    seq: int
    metrics: dict[str, float]
    parts: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class CameraEvent:
    """A camera analytics event."""

    ts: datetime
    type: str
    confidence: float
    count: int
    attrs: dict[str, Any] = field(default_factory=dict)


def iso_z(ts: datetime, timespec: str = "milliseconds") -> str:
    """UTC ISO 8601 with a ``Z``."""
    return ts.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def dumps(doc: Any) -> bytes:
    """Compact JSON, UTF-8, non-ASCII as is."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

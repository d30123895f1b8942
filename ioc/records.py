"""The message types of the data flow: a raw broker message, and the typed records it becomes after decoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as it came off the broker (``mid`` is only meaningful for the live connection)."""

    topic: str
    payload: bytes
    received_at: float
    mid: int = 0
    qos: int = 0


@dataclass(frozen=True, slots=True)
class Measurement:
    """One numeric reading. ``part`` names a sub-component (e.g. ``lane:2``), empty for the device."""

    time: datetime
    device_id: str
    metric: str
    value: float
    part: str = ""
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A discrete event such as ``traffic.accident``, with severity and confidence 0..1."""

    time: datetime
    device_id: str
    type: str
    severity: str
    confidence: float
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device's own online/offline announcement (the retained status or its last will)."""

    time: datetime
    device_id: str
    online: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A camera still image (JPEG)."""

    time: datetime
    device_id: str
    data: bytes
    content_type: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class HardwareClaim:
    """The hardware a payload says it comes from (Sensor.Community's ``esp8266id``).

    Validation compares it with the registry's ``metadata.hardware_id`` of the topic's device and drops it:
    it is checked, never stored."""

    time: datetime
    device_id: str
    hardware_id: str


Record = Measurement | Event | StatusChange | Snapshot | HardwareClaim

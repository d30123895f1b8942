"""The topic grammar of the device contract, parsed by one compiled regex per form."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
CHANNELS = ("telemetry", "event", "status", "snapshot")
CANONICAL_RE = re.compile(
    r"^(?P<prefix>ioc/v1)/(?P<kind>[a-z][a-z0-9_]{0,31})/(?P<device_id>[A-Za-z0-9_-]{1,64})/"
    r"(?P<channel>telemetry|event|status|snapshot)\Z"
)


@dataclass(frozen=True)
class CanonicalTopic:
    """A parsed ``ioc/v1/{kind}/{device_id}/{channel}`` topic."""

    kind: str
    device_id: str
    channel: str


def parse_canonical(topic: str) -> CanonicalTopic | None:
    """Parse a canonical topic, or return None when it is not one."""
    m = CANONICAL_RE.match(topic)
    if m is None:
        return None
    return CanonicalTopic(m["kind"], m["device_id"], m["channel"])


def canonical_topic(kind: str, device_id: str, channel: str) -> str:
    """Build the canonical topic for a device and channel."""
    if not DEVICE_ID_RE.match(device_id):
        raise ValueError(f"device id {device_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} must be one of {', '.join(CHANNELS)}")
    return f"ioc/v1/{kind}/{device_id}/{channel}"


def valid_device_id(device_id: str) -> bool:
    """True when ``device_id`` is allowed by the contract (no MQTT wildcards or separators)."""
    return bool(DEVICE_ID_RE.match(device_id))

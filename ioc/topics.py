"""The topic grammar of the device contract: the canonical form and each vendor form, one compiled regex each.

Every topic form is data here, in the shared core: the ingest's decoders route by it, provisioning
builds each device's broker ACL from it, the simulators build topics with ``canonical_topic``.
A form's regex has the named group ``device_id`` and optionally ``kind`` and ``channel``; the device
id group is deliberately loose (``[^/]*``) so a malformed id is reported as ``bad_device_id``, not
as an unknown topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
CHANNELS = ("telemetry", "event", "status", "snapshot")
CANONICAL_PREFIX = "ioc/v1"


@dataclass(frozen=True, slots=True)
class TopicForm:
    """One payload format's topics: the subscription filter and the regex that reads a topic of it."""

    format: str
    filter: str
    pattern: re.Pattern[str]

    @property
    def head(self) -> str:
        """The literal start of every topic of this form (the filter up to its first wildcard)."""
        return self.filter.partition("+")[0]


CANONICAL = TopicForm(
    "canonical",
    f"{CANONICAL_PREFIX}/+/+/+",
    re.compile(
        rf"^{CANONICAL_PREFIX}/(?P<kind>[a-z][a-z0-9_]{{0,31}})/(?P<device_id>[^/]*)/"
        rf"(?P<channel>{'|'.join(CHANNELS)})\Z"
    ),
)
LEGACY_FLOOD = TopicForm("legacy_flood", "legacy/flood/+", re.compile(r"^legacy/flood/(?P<device_id>[^/]*)\Z"))
TRAFFICX = TopicForm("trafficx", "vendor/trafficx/+", re.compile(r"^vendor/trafficx/(?P<device_id>[^/]*)\Z"))
CAMX = TopicForm("camx", "vendor/camx/+/event", re.compile(r"^vendor/camx/(?P<device_id>[^/]*)/event\Z"))
FIWARE = TopicForm("fiware", "fiware/+/+", re.compile(r"^fiware/(?P<entity_type>[^/]*)/(?P<device_id>[^/]*)\Z"))
SENSORCOMMUNITY = TopicForm(
    "sensorcommunity", "vendor/sensorcommunity/+", re.compile(r"^vendor/sensorcommunity/(?P<device_id>[^/]*)\Z")
)

# Every form a device may publish in, canonical first; the ingest subscribes to exactly these filters.
TOPIC_FORMS: dict[str, TopicForm] = {
    form.format: form for form in (CANONICAL, LEGACY_FLOOD, TRAFFICX, CAMX, FIWARE, SENSORCOMMUNITY)
}


def canonical_topic(kind: str, device_id: str, channel: str) -> str:
    """Build the canonical topic for a device and channel."""
    if not valid_device_id(device_id):
        raise ValueError(f"device id {device_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} must be one of {', '.join(CHANNELS)}")
    return f"{CANONICAL_PREFIX}/{kind}/{device_id}/{channel}"


def valid_device_id(device_id: str) -> bool:
    """True when ``device_id`` is allowed by the contract (no MQTT wildcards or separators, no newline)."""
    return DEVICE_ID_RE.fullmatch(device_id) is not None

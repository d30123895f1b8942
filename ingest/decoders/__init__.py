"""Topic routing and decoding: raw MQTT bytes become typed records here and nowhere else.

One module per payload format; each declares ``TOPIC`` (its form in ``ioc.topics``, the one
definition of the topic grammar), ``FORMAT``, ``KIND`` (the kind its devices usually are, a hint
for auto-registration), ``CHANNEL`` (when the topic does not name one) and ``decode``; a format
whose topic selects among several decoders (FIWARE entity types) also has ``decoder_for(match)``.
Adding a vendor is its topic form in ``ioc/topics.py``, one module here and one line in ``FORMATS``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ingest.decoders import camx, canonical, fiware, legacy_flood, sensorcommunity, trafficx
from ingest.decoders.parsing import DEFAULT_LIMITS, Limits, show
from ioc.errors import PayloadError
from ioc.kinds import KindSpec
from ioc.reasons import Reason
from ioc.records import Record
from ioc.topics import CANONICAL, DEVICE_ID_RE, TopicForm

__all__ = [
    "DEFAULT_LIMITS",
    "FORMATS",
    "SUBSCRIPTIONS",
    "DecoderModule",
    "Limits",
    "Route",
    "decode",
    "route",
    "topic_device",
]

logger = logging.getLogger(__name__)


class DecoderModule(Protocol):
    """What a route points at: a decoder module (or object) for one payload format."""

    FORMAT: str
    KIND: str | None

    def decode(self, route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
        """Turn one payload into records (pure; raises PayloadError)."""
        ...


class TopicFormat(DecoderModule, Protocol):
    """A registered format: a decoder plus the topics it owns."""

    CHANNEL: str | None
    TOPIC: TopicForm


@dataclass(frozen=True, slots=True)
class Route:
    """What the topic says: which decoder, which device, which kind (canonical only) and channel.

    ``spec`` is the topic's kind as the registry defines it, when ``route`` was given the kinds."""

    decoder: DecoderModule
    device_id: str
    kind: str | None
    channel: str
    spec: KindSpec | None = None

    @property
    def format(self) -> str:
        """The payload format name (``canonical``, ``trafficx``, ...) as stored in the device registry."""
        return self.decoder.FORMAT

    @property
    def kind_hint(self) -> str | None:
        """The kind the topic or the format implies, for auto-registering an unknown device."""
        return self.kind or self.decoder.KIND


FORMATS: tuple[TopicFormat, ...] = (canonical, legacy_flood, trafficx, camx, fiware, sensorcommunity)
SUBSCRIPTIONS: tuple[str, ...] = tuple(fmt.TOPIC.filter for fmt in FORMATS)

_CANONICAL_HEAD = CANONICAL.head
# The literal head of each filter lets route() skip formats with one startswith().
_TABLE: tuple[tuple[str, TopicFormat, Callable[[re.Match[str]], DecoderModule | None] | None], ...] = tuple(
    (fmt.TOPIC.head, fmt, getattr(fmt, "decoder_for", None)) for fmt in FORMATS
)


def route(topic: str, kinds: Mapping[str, KindSpec] | None = None) -> Route:
    """Route a topic to its decoder; PayloadError ``unknown_topic`` or ``bad_device_id`` otherwise.

    With ``kinds``, a canonical topic naming a kind not among them is an ``unknown_topic`` too.
    """
    for head, fmt, decoder_for in _TABLE:
        if not topic.startswith(head):
            continue
        match = fmt.TOPIC.pattern.match(topic)
        if match is None:
            break
        device_id = match["device_id"]
        if DEVICE_ID_RE.fullmatch(device_id) is None:  # fullmatch: "$" would allow a trailing newline
            raise PayloadError(Reason.BAD_DEVICE_ID, f"device id {show(device_id)} must match [A-Za-z0-9_-]{{1,64}}")
        groups = match.groupdict()
        decoder = fmt if decoder_for is None else decoder_for(match)
        if decoder is None:
            break
        kind = groups.get("kind")
        spec = None
        if kind is not None and kinds is not None:
            spec = kinds.get(kind)
            if spec is None:
                raise PayloadError(Reason.UNKNOWN_TOPIC, f"no device kind {show(kind)} (topic {show(topic)})")
        channel = groups.get("channel") or fmt.CHANNEL
        assert channel is not None
        return Route(decoder, device_id, kind, channel, spec)
    raise PayloadError(Reason.UNKNOWN_TOPIC, f"no decoder for topic {show(topic)}")


def topic_device(topic: str) -> str | None:
    """The device a canonical-looking topic names even when no decoder owns it (a device's own tree,
    ``ioc/v1/{kind}/{id}/...``), so its unknown_topic messages are charged to it; None otherwise."""
    parts = topic.split("/", 4)
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}/" != _CANONICAL_HEAD:
        return None
    return parts[3] if DEVICE_ID_RE.fullmatch(parts[3]) else None


def decode(route: Route, payload: bytes, received_at: datetime, limits: Limits = DEFAULT_LIMITS) -> list[Record]:
    """Decode one message (pure): size checks first, then the route's decoder; raises PayloadError."""
    size = len(payload)
    if size == 0:
        raise PayloadError(Reason.EMPTY, "zero-length payload")
    limit = limits.max_snapshot_bytes if route.channel == "snapshot" else limits.max_payload_bytes
    if size > limit:
        raise PayloadError(Reason.OVERSIZED, f"{size} bytes > {limit}")
    if received_at.tzinfo is not UTC:
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        received_at = received_at.astimezone(UTC)
    return route.decoder.decode(route, payload, received_at, limits)

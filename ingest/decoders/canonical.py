"""Canonical topics ``ioc/v1/{kind}/{device_id}/{channel}``: telemetry, event, status and snapshot.

Telemetry (or a SenML pack, see ``senml``)::

    {"ts": "2026-11-21T07:00:00Z", "seq": 17, "device_id": "FL-BT-001",
     "metrics": {"water_level_cm": 12.5, "rainfall_mm_h": 3.0, "battery_pct": 88}}

Event::

    {"ts": 1763708700, "type": "traffic.accident", "severity": "high", "confidence": 0.87,
     "attrs": {"lane": 2}}

Status: the plain text ``online`` or ``offline``. Snapshot: the raw bytes of a complete JPEG.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.decoders import senml
from ingest.decoders.parsing import (
    Limits,
    field,
    integer,
    kind_of,
    load_json,
    mapping,
    number,
    show,
    text,
    timestamp,
    utf8,
)
from ioc import topics
from ioc.errors import PayloadError
from ioc.kinds import KindSpec, load_kinds
from ioc.reasons import Reason
from ioc.records import SEVERITIES, Event, Measurement, Record, Snapshot, StatusChange

if TYPE_CHECKING:
    from ingest.decoders import Route

logger = logging.getLogger(__name__)

TOPIC = topics.CANONICAL
FORMAT = TOPIC.format
KIND: str | None = None  # the topic names the kind
CHANNEL: str | None = None  # the topic names the channel

EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,31}\Z")
_SEQ_MAX = 2**63 - 1
_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_STATUS = {"online": True, "offline": False}


def decode(route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
    """Decode one canonical message according to the topic's channel."""
    channel = route.channel
    if channel == "telemetry":
        doc = load_json(payload, limits, floats=True)  # seq, the one integer, is in range only below 2**63
        if type(doc) is list:
            return senml.decode_pack(doc, route.device_id, received_at, _kind(route))
        return _telemetry(doc, route.device_id)
    if channel == "event":
        return [_event(load_json(payload, limits), route.device_id)]
    if channel == "status":
        return [_status(payload, route.device_id, received_at)]
    return [_snapshot(payload, route.device_id, received_at)]


def _kind(route: Route) -> KindSpec:
    """The topic's kind: as routed with the registry's kinds, else the built-in one (pure callers, tests)."""
    if route.spec is not None:
        return route.spec
    spec = load_kinds().get(route.kind or "")
    if spec is None:
        raise PayloadError(Reason.UNKNOWN_METRIC, f"no device kind {show(route.kind)} to read SenML names by")
    return spec


def device_named(doc: dict[str, Any], default: str) -> str:
    """The optional ``device_id`` of a payload (validation checks it equals the topic's)."""
    named = doc.get("device_id")
    return default if named is None else text(named, "device_id")


def _telemetry(doc: Any, device_id: str) -> list[Record]:
    if type(doc) is not dict:
        raise PayloadError(Reason.BAD_SCHEMA, f"telemetry must be a JSON object or a SenML array, got {kind_of(doc)}")
    time = timestamp(field(doc, "ts"), "ts")
    seq = doc.get("seq")
    if seq is not None:
        seq = integer(seq, "seq")
        if not 0 <= seq <= _SEQ_MAX:
            raise PayloadError(Reason.BAD_SCHEMA, f"seq must be 0..2**63-1, got {show(seq)}")
    device_id = device_named(doc, device_id)
    metrics = mapping(field(doc, "metrics"), "metrics")
    if not metrics:
        raise PayloadError(Reason.EMPTY, "metrics is empty")
    return [Measurement(time, device_id, name, number(value, name), "", seq) for name, value in metrics.items()]


def _event(doc: Any, device_id: str) -> Event:
    doc = mapping(doc, "event")
    time = timestamp(field(doc, "ts"), "ts")
    kind = text(field(doc, "type"), "type")
    if EVENT_TYPE_RE.match(kind) is None:
        raise PayloadError(Reason.BAD_EVENT, f"type must be category.subtype in lowercase, got {show(kind)}")
    severity = field(doc, "severity")
    if severity not in SEVERITIES or type(severity) is not str:
        raise PayloadError(Reason.BAD_EVENT, f"severity must be one of {'|'.join(SEVERITIES)}, got {show(severity)}")
    confidence = doc.get("confidence")
    confidence = 1.0 if confidence is None else number(confidence, "confidence")
    if not 0.0 <= confidence <= 1.0:
        raise PayloadError(Reason.BAD_EVENT, f"confidence must be 0..1, got {confidence!r}")
    attrs = doc.get("attrs")
    attrs = {} if attrs is None else mapping(attrs, "attrs")
    check_attrs(attrs)
    return Event(time, device_named(doc, device_id), kind, severity, confidence, attrs)


def check_attrs(attrs: dict[str, Any]) -> None:
    """Refuse attribute values PostgreSQL ``jsonb`` cannot store: non-finite numbers, NUL, lone surrogates."""
    stack: list[Any] = [attrs]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            stack.extend(node.keys())
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
        elif type(node) is str:
            if "\x00" in node:
                raise PayloadError(Reason.BAD_ENCODING, "NUL character in attrs")
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    raise PayloadError(Reason.BAD_ENCODING, "lone surrogate in attrs") from None
        elif type(node) is float and node - node != 0.0:
            raise PayloadError(Reason.NON_FINITE, "attrs holds a non-finite number")


def _status(payload: bytes, device_id: str, received_at: datetime) -> StatusChange:
    word = utf8(payload).strip()
    online = _STATUS.get(word)
    if online is None:
        raise PayloadError(Reason.BAD_STATUS, f"status must be online or offline, got {show(word)}")
    return StatusChange(received_at, device_id, online)


def _snapshot(payload: bytes, device_id: str, received_at: datetime) -> Snapshot:
    if not payload.startswith(_JPEG_START):
        raise PayloadError(Reason.BAD_SNAPSHOT, f"not a JPEG (starts with {payload[:4].hex(' ')})")
    if not payload.rstrip(b"\x00").endswith(_JPEG_END):
        raise PayloadError(Reason.BAD_SNAPSHOT, "truncated JPEG (no FF D9 end marker)")
    return Snapshot(received_at, device_id, payload)

"""Camera analytics events on ``vendor/camx/{camera}/event``.

Example::

    {"Source": "CAM-Q1-001", "UtcTime": "2026-11-21T07:05:00Z", "Rule": "Accident",
     "Confidence": 87, "Count": 3}

gives Event(type="traffic.accident", severity="high", confidence=0.87,
attrs={"rule": "Accident", "count": 3}).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.decoders.parsing import Limits, field, integer, load_json, mapping, number, show, text, timestamp
from ioc import topics
from ioc.errors import PayloadError
from ioc.reasons import Reason
from ioc.records import Event, Record

if TYPE_CHECKING:
    from ingest.decoders import Route

logger = logging.getLogger(__name__)

TOPIC = topics.CAMX
FORMAT = TOPIC.format
KIND: str | None = "camera"
CHANNEL: str | None = "event"

# Rule -> (event type, severity).
RULES: dict[str, tuple[str, str]] = {
    "Accident": ("traffic.accident", "high"),
    "WrongWay": ("traffic.wrong_way", "medium"),
    "Crowd": ("public_order.crowd", "medium"),
    "Congestion": ("traffic.congestion", "low"),
    "Flooding": ("flood.observed", "high"),
}


def decode(route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
    """Decode one camera analytics event."""
    doc = mapping(load_json(payload, limits), "event")
    source = text(field(doc, "Source"), "Source")
    time = timestamp(field(doc, "UtcTime"), "UtcTime")
    rule = field(doc, "Rule")
    mapped = RULES.get(rule) if type(rule) is str else None
    if mapped is None:
        raise PayloadError(Reason.BAD_EVENT, f"unknown Rule {show(rule)}; expected one of {', '.join(RULES)}")
    confidence = number(field(doc, "Confidence"), "Confidence")
    if not 0.0 <= confidence <= 100.0:
        raise PayloadError(Reason.BAD_EVENT, f"Confidence must be 0..100, got {confidence!r}")
    attrs: dict[str, Any] = {"rule": rule}
    count = doc.get("Count")
    if count is not None:
        attrs["count"] = integer(count, "Count")
        if not 0 <= attrs["count"] < 2**31:
            raise PayloadError(Reason.BAD_SCHEMA, f"Count must be 0..2**31-1, got {show(count)}")
    event_type, severity = mapped
    return [Event(time, source, event_type, severity, confidence / 100.0, attrs)]

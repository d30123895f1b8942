"""Traffic controllers on ``vendor/trafficx/{controller}``: per-lane counts, speeds and occupancy.

Example::

    {"ctrl": "TR-Q1-001", "time": "2026-11-21T14:05:00+07:00", "period": 60,
     "lanes": [{"lane": 1, "count": 42, "speed": 23.5, "occ": 0.31},
               {"lane": 2, "count": 18, "speed": 31.0, "occ": 0.12}]}

gives, at 07:05:00Z, for the device: vehicle_count=60, interval_s=60, avg_speed_kmh=25.75 (count-weighted),
occupancy_pct=21.5; and per lane (part ``lane:1``, ``lane:2``): vehicle_count, avg_speed_kmh, occupancy_pct.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

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
)
from ioc import topics
from ioc.errors import PayloadError
from ioc.reasons import Reason
from ioc.records import Measurement, Record

if TYPE_CHECKING:
    from ingest.decoders import Route

logger = logging.getLogger(__name__)

TOPIC = topics.TRAFFICX
FORMAT = TOPIC.format
KIND: str | None = "traffic"
CHANNEL: str | None = "telemetry"

_MAX_LANE = 999


def decode(route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
    """Decode one controller report into device totals and per-lane measurements."""
    doc = mapping(load_json(payload, limits), "report")
    ctrl = text(field(doc, "ctrl"), "ctrl")
    time = timestamp(field(doc, "time"), "time")
    period = number(field(doc, "period"), "period")
    lanes = field(doc, "lanes")
    if type(lanes) is not list:
        raise PayloadError(Reason.BAD_SCHEMA, f"lanes must be a list, got {kind_of(lanes)}")
    if not lanes:
        raise PayloadError(Reason.EMPTY, "lanes is empty")
    per_lane: list[Record] = []
    seen: set[int] = set()
    total = 0.0
    speed_sum = 0.0
    occ_sum = 0.0
    for index, raw in enumerate(lanes):
        where = f"lanes[{index}]"
        lane = mapping(raw, where)
        lane_no = integer(field(lane, "lane", f"{where}."), f"{where}.lane")
        if not 0 <= lane_no <= _MAX_LANE or lane_no in seen:
            raise PayloadError(
                Reason.BAD_SCHEMA, f"{where}.lane must be a distinct integer 0..{_MAX_LANE}, got {show(lane_no)}"
            )
        seen.add(lane_no)
        part = f"lane:{lane_no}"
        count = number(field(lane, "count", f"{where}."), f"{where}.count")
        occupancy = number(field(lane, "occ", f"{where}."), f"{where}.occ") * 100.0
        per_lane.append(Measurement(time, ctrl, "vehicle_count", count, part))
        speed = lane.get("speed")
        if count > 0:
            if speed is None:
                raise PayloadError(Reason.BAD_SCHEMA, f"missing field {where}.speed (required when count > 0)")
            speed = number(speed, f"{where}.speed")
            speed_sum += count * speed
            per_lane.append(Measurement(time, ctrl, "avg_speed_kmh", speed, part))
        elif speed is not None:
            number(speed, f"{where}.speed")  # ill-typed even if unused
        per_lane.append(Measurement(time, ctrl, "occupancy_pct", occupancy, part))
        total += count
        occ_sum += occupancy
    device: list[Record] = [
        Measurement(time, ctrl, "vehicle_count", total),
        Measurement(time, ctrl, "interval_s", period),
    ]
    if total > 0:
        device.append(Measurement(time, ctrl, "avg_speed_kmh", speed_sum / total))
    device.append(Measurement(time, ctrl, "occupancy_pct", occ_sum / len(lanes)))
    return device + per_lane

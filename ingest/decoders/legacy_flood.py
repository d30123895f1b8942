"""Legacy flood gauges on ``legacy/flood/{station}``: CSV ``station,epoch_s,level_mm,rain_mm_5min,battery_v``.

Example (one or more lines, no header)::

    FL-Q7-003,1763708400,125,2.5,3.71

gives water_level_cm=12.5, rainfall_mm_h=30.0 and battery_pct=45.6 (3.3 V empty, 4.2 V full).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING

from ingest.decoders.parsing import Limits, epoch, show, utf8
from ioc import topics
from ioc.errors import PayloadError
from ioc.reasons import Reason
from ioc.records import Measurement, Record

if TYPE_CHECKING:
    from ingest.decoders import Route

logger = logging.getLogger(__name__)

TOPIC = topics.LEGACY_FLOOD
FORMAT = TOPIC.format
KIND: str | None = "flood"
CHANNEL: str | None = "telemetry"

COLUMNS = ("station", "epoch_s", "level_mm", "rain_mm_5min", "battery_v")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_NOT_FINITE = {
    spelling: float("nan")
    for spelling in ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")
}
_BATTERY_EMPTY_V = 3.3
_BATTERY_FULL_V = 4.2


def _number(cell: str, line: int, column: str) -> float:
    cell = cell.strip()
    value = float(cell) if _NUMBER.match(cell) is not None else _NOT_FINITE.get(cell.lower())
    if value is None:
        raise PayloadError(Reason.BAD_CSV, f"line {line}: {column} must be a number, got {show(cell)}")
    if value - value != 0.0:  # nan, inf, or an exponent beyond float range
        raise PayloadError(Reason.NON_FINITE, f"line {line}: {column} is not finite")
    return value


def decode(route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
    """Decode one or more CSV lines into flood measurements."""
    out: list[Record] = []
    for line, row in enumerate(utf8(payload).split("\n"), 1):
        row = row.strip()
        if not row:
            continue
        cells = row.split(",")
        if len(cells) != len(COLUMNS):
            raise PayloadError(
                Reason.BAD_CSV,
                f"line {line}: expected {len(COLUMNS)} columns ({','.join(COLUMNS)}), got {len(cells)}",
            )
        station = cells[0].strip()
        time = epoch(_number(cells[1], line, "epoch_s"), f"line {line}: epoch_s")
        level_mm = _number(cells[2], line, "level_mm")
        rain_mm_5min = _number(cells[3], line, "rain_mm_5min")
        battery_v = _number(cells[4], line, "battery_v")
        battery_pct = (battery_v - _BATTERY_EMPTY_V) / (_BATTERY_FULL_V - _BATTERY_EMPTY_V) * 100.0
        out.append(Measurement(time, station, "water_level_cm", level_mm / 10.0))
        out.append(Measurement(time, station, "rainfall_mm_h", rain_mm_5min * 12.0))
        out.append(Measurement(time, station, "battery_pct", min(100.0, max(0.0, battery_pct))))
    if not out:
        raise PayloadError(Reason.EMPTY, "no CSV lines")
    return out

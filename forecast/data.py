"""What the forecaster reads: the device registry and minute series from ``rollups_1m``, never beyond an origin.

A ``Grid`` holds one float array per (device, metric) on a minute axis: index ``i`` is the mean of the
readings in the minute starting at ``start + i min`` (NaN when none). Everything is loaded with
``bucket < until``: the minute that holds the origin itself is not complete, so it is never read.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from ioc.thresholds import DEFAULT_DANGER_CM, DEFAULT_WARNING_CM

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
FLOOD_METRICS = ("water_level_cm", "rainfall_mm_h")
TRAFFIC_METRICS = ("avg_speed_kmh", "vehicle_count")


@dataclass(frozen=True)
class Device:
    """A forecastable device: where it is and its flood levels (from its metadata, else the defaults)."""

    device_id: str
    kind: str
    lat: float
    lon: float
    zone: str | None = None
    warning_cm: float = DEFAULT_WARNING_CM
    danger_cm: float = DEFAULT_DANGER_CM


@dataclass
class Grid:
    """Minute series from ``start`` (inclusive) for ``minutes`` minutes."""

    start: datetime
    minutes: int
    series: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def get(self, device_id: str, metric: str) -> np.ndarray:
        """The series of (device, metric), all NaN when nothing was stored."""
        found = self.series.get((device_id, metric))
        if found is None:
            found = self.series[(device_id, metric)] = np.full(self.minutes, np.nan)
        return found

    def index(self, when: datetime) -> int:
        """Index of the minute starting at ``when``."""
        return int((when - self.start) / MINUTE)

    def time(self, index: int) -> datetime:
        """Start of minute ``index``."""
        return self.start + index * MINUTE

    def epoch(self) -> np.ndarray:
        """Epoch seconds of the start of every minute."""
        return self.start.timestamp() + 60.0 * np.arange(self.minutes)


def floor_minute(when: datetime) -> datetime:
    """``when`` truncated to its minute."""
    return when.replace(second=0, microsecond=0)


def _metadata_float(meta: Any, key: str, default: float) -> float:
    value = meta.get(key) if isinstance(meta, dict) else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else default


async def load_devices(conn: asyncpg.Connection, kinds: tuple[str, ...] = ("flood", "traffic")) -> list[Device]:
    """Enabled devices of ``kinds`` with a position, in id order."""
    rows = await conn.fetch(
        "SELECT device_id, kind, lat, lon, zone, metadata FROM devices "
        "WHERE enabled AND kind = ANY($1::text[]) AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY device_id",
        list(kinds),
    )
    return [
        Device(
            r["device_id"],
            r["kind"],
            r["lat"],
            r["lon"],
            r["zone"],
            _metadata_float(r["metadata"], "warning_cm", DEFAULT_WARNING_CM),
            _metadata_float(r["metadata"], "danger_cm", DEFAULT_DANGER_CM),
        )
        for r in rows
    ]


SERIES_PER_FETCH = 8


async def load_grid(
    conn: asyncpg.Connection,
    start: datetime,
    until: datetime,
    metrics: tuple[str, ...],
    windows: list[tuple[datetime, datetime]] | None = None,
) -> Grid:
    """Minute means of ``metrics`` for ``[start, until)``; only the ``windows`` inside it when given."""
    start, until = floor_minute(start), floor_minute(until)
    grid = Grid(start, max(0, int((until - start) / MINUTE)))
    for a, b in windows or [(start, until)]:
        a, b = max(a, start), min(b, until)
        if a >= b:
            continue
        # One row per series (arrays built by the server): a 3-week history is millions of minutes. A cursor
        # takes a few series at a time: all of them at once as Python lists were most of training's memory.
        async with conn.transaction(readonly=True):
            async for r in conn.cursor(
                "SELECT device_id, metric, array_agg(((extract(epoch FROM bucket) - $4) / 60)::int) AS i, "
                "array_agg(sum / count) AS v FROM rollups_1m "
                "WHERE metric = ANY($1::text[]) AND part = '' AND count > 0 AND bucket >= $2 AND bucket < $3 "
                "GROUP BY device_id, metric",
                list(metrics),
                a,
                b,
                start.timestamp(),
                prefetch=SERIES_PER_FETCH,
            ):
                series = grid.get(r["device_id"], r["metric"])
                series[np.asarray(r["i"], dtype=np.int64)] = np.asarray(r["v"], dtype=float)
    return grid


async def load_levels(
    conn: asyncpg.Connection, device_id: str, metric: str, start: datetime, until: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, values) of one series from the raw measurements in ``[start, until)`` (a tide gauge)."""
    rows = await conn.fetch(
        "SELECT extract(epoch FROM time) AS t, value FROM measurements "
        "WHERE device_id = $1 AND metric = $2 AND part = '' AND time >= $3 AND time < $4 ORDER BY time",
        device_id,
        metric,
        start,
        until,
    )
    return np.array([float(r["t"]) for r in rows]), np.array([r["value"] for r in rows], dtype=float)

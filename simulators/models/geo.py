"""Distances and local time: the only geometry and calendar the models need."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

LOCAL_TZ = timezone(timedelta(hours=7), "ICT")
KM_PER_DEG_LAT = 111.32


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance in km; exact enough inside one city."""
    dx = (lon2 - lon1) * KM_PER_DEG_LAT * math.cos(math.radians((lat1 + lat2) / 2))
    dy = (lat2 - lat1) * KM_PER_DEG_LAT
    return math.hypot(dx, dy)


def offset(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
    """The point ``north_km`` and ``east_km`` away from (lat, lon)."""
    return (
        lat + north_km / KM_PER_DEG_LAT,
        lon + east_km / (KM_PER_DEG_LAT * math.cos(math.radians(lat))),
    )


def local_hours(t: float) -> tuple[float, int]:
    """Local (UTC+7) hour of day as a float and the weekday (Monday 0) of epoch seconds ``t``."""
    local = datetime.fromtimestamp(t, UTC).astimezone(LOCAL_TZ)
    return local.hour + local.minute / 60 + local.second / 3600, local.weekday()

"""Distances and local time: the only geometry and calendar the models need."""

from __future__ import annotations

import math
from datetime import timedelta, timezone
from typing import Any

import numpy as np

LOCAL_TZ = timezone(timedelta(hours=7), "ICT")
LOCAL_OFFSET_S = 7 * 3600
KM_PER_DEG_LAT = 111.32
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance in km; exact enough inside one city."""
    dx = (lon2 - lon1) * KM_PER_DEG_LAT * math.cos(math.radians((lat1 + lat2) / 2))
    dy = (lat2 - lat1) * KM_PER_DEG_LAT
    return math.hypot(dx, dy)


def offset(lat: float, lon: float, north_km: Any, east_km: Any) -> tuple[Any, Any]:
    """The point ``north_km`` and ``east_km`` (numbers or arrays) away from (lat, lon)."""
    return (
        lat + north_km / KM_PER_DEG_LAT,
        lon + east_km / (KM_PER_DEG_LAT * math.cos(math.radians(lat))),
    )


def local_hours(t: Any) -> tuple[Any, Any]:
    """Local (UTC+7) hour of day as a float and the weekday (Monday 0) of epoch seconds ``t`` (number or array)."""
    local = np.asarray(t, dtype=np.float64) + LOCAL_OFFSET_S
    days = np.floor(local / 86400)
    return ((local - days * 86400) / 3600)[()], ((days + EPOCH_WEEKDAY) % 7)[()]

"""Distances and directions on the Earth for the incident rules and the nearby query (pure functions)."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0
COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (the same formula as incidents.nearby's SQL)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def compass(bearing: float) -> str:
    """The eight-point compass direction of a bearing (N, NE, ... NW)."""
    return COMPASS[int(((bearing % 360.0) + 22.5) // 45.0) % 8]


@dataclass(frozen=True, slots=True)
class Box:
    """A latitude/longitude rectangle holding every point within a radius of a centre."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


def bounding_box(lat: float, lon: float, radius_m: float) -> Box:
    """The rectangle around a circle of ``radius_m`` (a superset: the exact distance is checked after).

    Longitude degrees shrink with cos(latitude); the widest point of the circle is nearer the pole than its
    centre, so the longitude half-width uses the latitude of the box's edge nearer the pole.
    """
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * (1 + 1e-9)  # a point exactly on the circle stays inside
    edge = min(89.9, abs(lat) + dlat)
    dlon = min(180.0, dlat / max(math.cos(math.radians(edge)), 1e-9))
    return Box(lat - dlat, lat + dlat, lon - dlon, lon + dlon)

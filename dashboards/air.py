"""Air-quality figures (pure): each sensor's VN_AQI from its hourly means, suspect sensors, zones and the city.

A sensor's hourly means come from ``queries.air_hours`` (hour 0 = the 60 minutes up to now). Its index is
``ioc.aqi.hourly_index`` over them. A sensor that disagrees with its neighbours (``suspects``) is shown,
marked, but counts neither in its zone's index nor in the city's, and raises no pollution alert.

A zone's index is its worst counted sensor; the city's is its worst zone (no population data exists to
weight zones by, and the Decision's own rule for combining is the maximum).
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dashboards.encoding import iso
from ioc import aqi, aqi_us

Row = dict[str, Any]
Hours = Mapping[str, list[float | None]]  # pollutant -> hourly means, newest first

KIND = "air"
HOURS = 36  # hourly means loaded: 12 for the NowCast of each of the last 24 hours (the history)
LIVE_HOURS = 12  # what the live index needs
TOP_N = 10
SILENT = ("offline", "stale")


@dataclass(frozen=True)
class SuspectRule:
    """When a sensor is suspect: its mean over ``window_h`` hours is ``max_z`` robust deviations from the median
    of at least ``min_neighbours`` sensors within ``radius_km`` (deviation = 1.4826 x MAD, at least
    ``floor_ugm3`` and ``floor_ratio`` of the median, so that close agreement does not make noise suspect)."""

    radius_km: float = 3.0
    window_h: int = 3
    min_neighbours: int = 3
    max_z: float = 4.0
    floor_ugm3: float = 5.0
    floor_ratio: float = 0.25
    pollutants: tuple[str, ...] = ("pm25", "pm10")


DEFAULT_SUSPECT = SuspectRule()


def sensor(hours: Hours) -> Row:
    """One sensor's index now: VN_AQI (value, band, dominant pollutant, sub-indices) and the US EPA view."""
    vn = aqi.hourly_index(hours)
    us = aqi_us.hourly_index(hours)
    return {
        "aqi": vn.aqi,
        "band": vn.band.key if vn.band else None,
        "dominant": vn.dominant,
        "sub": vn.sub,
        "concentrations": {p: round(v, 1) for p, v in vn.concentrations.items()},
        "us": {
            "aqi": us.aqi,
            "category": aqi_us.category(us.aqi) if us.aqi is not None else None,
            "dominant": us.dominant,
        },
    }


def history(hours: Hours, at: datetime, n: int = 24) -> list[Row]:
    """The hourly index of each of the last ``n`` hours (oldest first), from up to n + 11 hourly means."""
    out = []
    for k in range(n - 1, -1, -1):
        index = aqi.hourly_index({p: series[k:] for p, series in hours.items()})
        out.append({"time": iso(at - timedelta(hours=k)), "aqi": index.aqi, "dominant": index.dominant})
    return out


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _window_mean(series: list[float | None], window_h: int) -> float | None:
    present = [v for v in series[:window_h] if v is not None]
    return sum(present) / len(present) if len(present) * 2 > window_h else None


def suspects(devices: list[Row], hours: Mapping[str, Hours], rule: SuspectRule = DEFAULT_SUSPECT) -> dict[str, Row]:
    """Sensors far from their neighbours' median (robust z-score), with the evidence."""
    placed = [d for d in devices if d.get("lat") is not None and d.get("lon") is not None]
    out: dict[str, Row] = {}
    for pollutant in rule.pollutants:
        means = {
            d["device_id"]: m
            for d in placed
            if (m := _window_mean(list(hours.get(d["device_id"], {}).get(pollutant, [])), rule.window_h)) is not None
        }
        for d in placed:
            own = means.get(d["device_id"])
            if own is None or d["device_id"] in out:
                continue
            near = [
                means[n["device_id"]]
                for n in placed
                if n["device_id"] != d["device_id"]
                and n["device_id"] in means
                and distance_km(d["lat"], d["lon"], n["lat"], n["lon"]) <= rule.radius_km
            ]
            if len(near) < rule.min_neighbours:
                continue
            median = statistics.median(near)
            mad = statistics.median(abs(v - median) for v in near)
            scale = max(1.4826 * mad, rule.floor_ugm3, rule.floor_ratio * median)
            z = abs(own - median) / scale
            if z > rule.max_z:
                out[d["device_id"]] = {
                    "pollutant": pollutant,
                    "value": round(own, 1),
                    "median": round(median, 1),
                    "z": round(z, 1),
                    "neighbours": len(near),
                }
    return out


def _point(device: Row, figures: Row | None, suspect: Row | None) -> Row:
    f = figures or {}
    return {
        "device_id": device["device_id"],
        "name": device["name"],
        "zone": device["zone"],
        "lat": device["lat"],
        "lon": device["lon"],
        "status": device["status"],
        "aqi": f.get("aqi"),
        "band": f.get("band"),
        "dominant": f.get("dominant"),
        "pm25": f.get("concentrations", {}).get("pm25"),
        "us_aqi": f.get("us", {}).get("aqi"),
        "suspect": suspect,
    }


def _counted(point: Row) -> bool:
    return point["aqi"] is not None and point["suspect"] is None and point["status"] not in SILENT


def _worst(points: list[Row]) -> Row | None:
    counted = [p for p in points if _counted(p)]
    return max(counted, key=lambda p: (p["aqi"], p["device_id"])) if counted else None


def _headline(points: list[Row]) -> Row:
    worst = _worst(points)
    value = worst["aqi"] if worst else None
    return {
        "aqi": value,
        "band": aqi.band(value).key if value is not None else None,
        "dominant": worst["dominant"] if worst else None,
        "device_id": worst["device_id"] if worst else None,
        "sensors": sum(1 for p in points if _counted(p)),
    }


def view(zones: list[Row], devices: list[Row], figures: Mapping[str, Row], suspect: Mapping[str, Row]) -> Row:
    """The ``air`` channel: city and zone indices, the worst sensors, dominant pollutants, every sensor as a point."""
    points = [
        _point(d, figures.get(d["device_id"]), suspect.get(d["device_id"]))
        for d in sorted(devices, key=lambda d: d["device_id"])
        if d["kind"] == KIND
    ]
    by_zone = {z["zone_id"]: [p for p in points if p["zone"] == z["zone_id"]] for z in zones}
    zone_rows = [
        {"zone_id": z["zone_id"], "name": z["name"], **_headline(by_zone[z["zone_id"]])}
        for z in zones
        if by_zone[z["zone_id"]]
    ]
    city = _headline(points)
    if city["device_id"] is not None:
        city["zone"] = next(p["zone"] for p in points if p["device_id"] == city["device_id"])
    counted = [p for p in points if _counted(p)]
    dominant = Counter(p["dominant"] for p in counted if p["dominant"])
    return {
        "city": city,
        "zones": zone_rows,
        "worst": [
            {k: p[k] for k in ("device_id", "name", "zone", "aqi", "band", "dominant", "pm25")}
            for p in heapq.nsmallest(TOP_N, counted, key=lambda p: (-p["aqi"], p["device_id"]))
        ],
        "dominant": [
            {"pollutant": k, "sensors": n} for k, n in sorted(dominant.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "points": points,
        "suspects": len(suspect),
    }


def summary(full: Row) -> Row:
    """The ``air`` block of the summary channel: the city and each zone's index (the tablet's lines)."""
    return {
        "city": full["city"],
        "zones": [{k: z[k] for k in ("zone_id", "aqi", "band", "dominant")} for z in full["zones"]],
    }


def meta() -> Row:
    """``meta.thresholds.air``: the VN_AQI scale (bands, colours, advice), the US EPA view's, the suspect rule."""
    return {
        **aqi.meta(),
        "us_epa": aqi_us.meta(),
        "suspect": {"radius_km": DEFAULT_SUSPECT.radius_km, "window_h": DEFAULT_SUSPECT.window_h},
    }

"""The ``forecast:{zone}`` channels: each zone's newest forecasts and the crossings they predict.

The forecast job replaces the ``forecasts`` table once a minute and NOTIFYs ``ioc_forecasts``; the hub
then reloads the table (``load``) and rebuilds every zone's view (``zone_views``) from it and the live
devices (names, flood lines, the level now). A zone's view:

``{"origin": ISO time of the forecasts, "window_min": 120, "devices": [{device_id, name, kind, metric,
now, method, points: [{h, value, lower, upper}], warning: crossing | null, danger: crossing | null}],
"speed": [{h, value}]}`` where a crossing is ``{"limit", "eta_min", "probability"}`` (forecast.outlook)
and ``speed`` the mean forecast speed of the zone's traffic detectors per horizon.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from forecast.outlook import Crossing, Point, crossing

logger = logging.getLogger(__name__)

Row = dict[str, Any]
WINDOW_MIN = 120  # "the next two hours"
METRICS = {"flood": "water_level_cm", "traffic": "avg_speed_kmh"}  # what the wall shows per kind

LOAD_SQL = """
SELECT device_id, metric, horizon_min, origin, value, lower, upper, method
FROM forecasts WHERE metric = ANY($1::text[]) ORDER BY device_id, metric, horizon_min
"""


async def load(conn: asyncpg.Connection) -> list[Row]:
    """The newest forecasts of the metrics the wall shows."""
    return [dict(r) for r in await conn.fetch(LOAD_SQL, list(METRICS.values()))]


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _crossing(c: Crossing | None) -> Row | None:
    return None if c is None else {"limit": c.limit, "eta_min": c.eta_min, "probability": c.probability}


def _now(device: Row, metric: str) -> float | None:
    entry = (device.get("latest") or {}).get(metric)
    value = entry.get("value") if isinstance(entry, dict) else entry
    return float(value) if isinstance(value, int | float) else None


def device_outlook(device: Row, rows: list[Row]) -> Row:
    """One device's forecast points and, for a flood sensor, its predicted warning and danger crossings."""
    metric = METRICS[device["kind"]]
    points = [Point(r["horizon_min"], r["value"], r["lower"], r["upper"]) for r in rows]
    now = _now(device, metric)
    out: Row = {
        "device_id": device["device_id"],
        "name": device.get("name") or device["device_id"],
        "kind": device["kind"],
        "metric": metric,
        "now": _r(now),
        "method": rows[0]["method"] if rows else None,
        "points": [
            {"h": p.horizon_min, "value": _r(p.value), "lower": _r(p.lower), "upper": _r(p.upper)} for p in points
        ],
        "warning": None,
        "danger": None,
    }
    if device["kind"] == "flood":
        lines = device.get("thresholds") or {}
        for level, key in (("warning", "warning_cm"), ("danger", "danger_cm")):
            limit = lines.get(key)
            if isinstance(limit, int | float):
                out[level] = _crossing(crossing(now, points, float(limit), WINDOW_MIN))
    return out


def zone_views(zones: list[str], devices: dict[str, Row], rows: list[Row]) -> dict[str, Row]:
    """Every zone's ``forecast:{zone}`` view from the forecast rows and the live devices."""
    by_device: dict[str, list[Row]] = {}
    for r in rows:
        device = devices.get(r["device_id"])
        if device is not None and METRICS.get(device["kind"]) == r["metric"]:
            by_device.setdefault(r["device_id"], []).append(r)
    origins = [r["origin"] for r in rows]
    origin = max(origins).isoformat() if origins else None
    views: dict[str, Row] = {z: {"origin": origin, "window_min": WINDOW_MIN, "devices": [], "speed": []} for z in zones}
    speeds: dict[str, dict[int, list[float]]] = {}
    for device_id in sorted(by_device):
        device = devices[device_id]
        view = views.get(device["zone"])
        if view is None:
            continue
        view["devices"].append(device_outlook(device, by_device[device_id]))
        if device["kind"] == "traffic":
            for r in by_device[device_id]:
                speeds.setdefault(device["zone"], {}).setdefault(r["horizon_min"], []).append(r["value"])
    for zone, per_h in speeds.items():
        views[zone]["speed"] = [{"h": h, "value": _r(sum(v) / len(v))} for h, v in sorted(per_h.items())]
    return views

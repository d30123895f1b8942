"""Devices near a point: cameras, flood sensors and traffic detectors, nearest first, with direction and readings.

Plain SQL: a latitude/longitude rectangle (``incidents.geo.bounding_box``) narrows the rows through the
``devices_lat_lon`` index, then the haversine distance keeps those inside the circle. For 10,000 devices
the query's p50 is 0.14 ms and its p95 4.3 ms on the shared 2-core machine at load 15 (without the index:
3.6 and 12.5 ms; ``make bench-nearby``, docs/operations.md), well inside the 20 ms budget, so PostGIS,
another extension to install and upgrade, was not needed. The rectangle does not wrap at the
antimeridian (no city of ours straddles it).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from incidents.geo import EARTH_RADIUS_M, bearing_deg, bounding_box, compass

DEFAULT_RADIUS_M = 500.0
KINDS = ("camera", "flood", "traffic")

NEARBY = f"""
SELECT device_id, kind, name, zone, lat, lon, status, last_seen, dist_m FROM (
  SELECT *, row_number() OVER (PARTITION BY kind ORDER BY dist_m, device_id) AS rank FROM (
    SELECT d.device_id, d.kind, d.name, d.zone, d.lat, d.lon, d.status, d.last_seen,
           2 * {EARTH_RADIUS_M} * asin(least(1.0, sqrt(
             power(sin(radians(d.lat - $1) / 2), 2)
             + cos(radians($1)) * cos(radians(d.lat)) * power(sin(radians(d.lon - $2) / 2), 2)))) AS dist_m
    FROM devices d
    WHERE d.enabled AND d.kind = ANY($4::text[])
      AND d.lat BETWEEN $5 AND $6 AND d.lon BETWEEN $7 AND $8
  ) within_box WHERE dist_m <= $3
) ranked WHERE rank <= $9
ORDER BY dist_m, device_id
"""

FORECASTS = """
SELECT device_id, metric, horizon_min, value, lower, upper, origin, method FROM forecasts
WHERE device_id = ANY($1::text[]) ORDER BY device_id, metric, horizon_min
"""


async def nearby_devices(
    conn: asyncpg.Connection,
    lat: float,
    lon: float,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    kinds: tuple[str, ...] = KINDS,
    per_kind: int = 20,
) -> list[dict[str, Any]]:
    """Devices of ``kinds`` within ``radius_m`` of (lat, lon), nearest first (at most ``per_kind`` of each kind)."""
    box = bounding_box(lat, lon, radius_m)
    rows = await conn.fetch(
        NEARBY, lat, lon, radius_m, list(kinds), box.lat_min, box.lat_max, box.lon_min, box.lon_max, per_kind
    )
    return [_placed(dict(r), lat, lon) for r in rows]


def _placed(device: dict[str, Any], lat: float, lon: float) -> dict[str, Any]:
    bearing = bearing_deg(lat, lon, device["lat"], device["lon"])
    device["distance_m"] = round(device.pop("dist_m"), 1)
    device["bearing_deg"] = round(bearing, 1)
    device["direction"] = compass(bearing)
    return device


async def with_readings(conn: asyncpg.Connection, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each device's latest values, its current forecasts (forecast.job's latest round, shortest horizon
    first) and, for cameras, the time of its latest snapshot."""
    ids = [d["device_id"] for d in devices]
    latest: dict[str, dict[str, Any]] = {}
    for r in await conn.fetch(
        "SELECT device_id, metric, value, time FROM latest_values WHERE device_id = ANY($1::text[]) AND part = ''",
        ids,
    ):
        latest.setdefault(r["device_id"], {})[r["metric"]] = {"value": r["value"], "time": r["time"]}
    snaps = {
        r["device_id"]: r["time"]
        for r in await conn.fetch("SELECT device_id, time FROM snapshots WHERE device_id = ANY($1::text[])", ids)
    }
    forecasts: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in await conn.fetch(FORECASTS, ids):
        point = {k: r[k] for k in ("horizon_min", "value", "lower", "upper", "origin", "method")}
        forecasts.setdefault(r["device_id"], {}).setdefault(r["metric"], []).append(point)
    for d in devices:
        d["latest"] = latest.get(d["device_id"], {})
        d["forecast"] = forecasts.get(d["device_id"], {})
        if d["kind"] == "camera":
            d["snapshot_at"] = snaps.get(d["device_id"])
    return devices

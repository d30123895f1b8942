"""What each rule sees now: one Observation per device (level, value, message), from the database."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from dashboards import air, queries
from dashboards.alerts.rules import Rule
from dashboards.encoding import jsonable
from forecast.outlook import Point, crossing
from ioc import aqi

logger = logging.getLogger(__name__)

DEVICE = "d.device_id, d.name, d.zone, d.kind, d.metadata"
# Every query takes the devices to look at as its last parameter: NULL for all of them.

THRESHOLD_SQL = f"""
SELECT {DEVICE}, lv.value
FROM devices d LEFT JOIN latest_values lv ON lv.device_id = d.device_id AND lv.metric = $2 AND lv.part = ''
WHERE d.enabled AND ($1::text IS NULL OR d.kind = $1) AND ($3::text[] IS NULL OR d.device_id = ANY($3))
"""
# Latest value minus the lowest in the window before it: per-device index range scans, no fleet-wide scan.
RISE_SQL = f"""
SELECT {DEVICE}, lv.value - w.low AS value
FROM devices d
JOIN latest_values lv ON lv.device_id = d.device_id AND lv.metric = $2 AND lv.part = ''
CROSS JOIN LATERAL (
  SELECT min(m.value) AS low FROM measurements m
  WHERE m.device_id = d.device_id AND m.metric = $2 AND m.part = ''
    AND m.time >= lv.time - make_interval(secs => $3::float8) AND m.time <= lv.time
) w
WHERE d.enabled AND ($1::text IS NULL OR d.kind = $1) AND ($4::text[] IS NULL OR d.device_id = ANY($4))
"""
EVENT_SQL = f"""
SELECT {DEVICE}, max(e.confidence) AS value, array_agg(DISTINCT e.severity) AS severities,
       array_agg(DISTINCT e.type) AS types, count(*) AS n
FROM events e JOIN devices d ON d.device_id = e.device_id
WHERE e.time > now() - make_interval(secs => $2::float8) AND e.type = ANY($3::text[]) AND e.confidence >= $4
  AND d.enabled AND ($1::text IS NULL OR d.kind = $1) AND ($5::text[] IS NULL OR d.device_id = ANY($5))
GROUP BY d.device_id
"""
STATUS_SQL = f"""
SELECT {DEVICE}, d.status,
       extract(epoch FROM now() - coalesce(d.last_seen, d.status_since, d.created_at)) AS value
FROM devices d
WHERE d.enabled AND d.status = ANY($2::text[]) AND ($1::text IS NULL OR d.kind = $1)
  AND ($3::text[] IS NULL OR d.device_id = ANY($3))
"""
# The newest forecasts per device, the level now, and the active alert of the rule that watches the readings.
FORECAST_SQL = f"""
SELECT {DEVICE}, lv.value AS now,
       array_agg(f.horizon_min ORDER BY f.horizon_min) AS hs, array_agg(f.value ORDER BY f.horizon_min) AS vs,
       array_agg(f.lower ORDER BY f.horizon_min) AS los, array_agg(f.upper ORDER BY f.horizon_min) AS his,
       (SELECT min(a.id) FROM alerts a WHERE a.rule = $3 AND a.device_id = d.device_id AND a.state <> 'resolved')
         AS observed
FROM forecasts f JOIN devices d ON d.device_id = f.device_id
LEFT JOIN latest_values lv ON lv.device_id = d.device_id AND lv.metric = $2 AND lv.part = ''
WHERE f.metric = $2 AND d.enabled AND ($1::text IS NULL OR d.kind = $1)
  AND ($4::text[] IS NULL OR d.device_id = ANY($4))
GROUP BY d.device_id, lv.value
"""


@dataclass(frozen=True)
class Observation:
    """A rule's view of one device: ``level`` is None (clear), warning, critical or hold (hysteresis band)."""

    level: str | None
    value: float | None
    message: str
    device: dict[str, Any]
    note: str | None = None  # a clear condition superseded (says by what): the alert resolves at once


def _device(row: asyncpg.Record) -> dict[str, Any]:
    return {"device_id": row["device_id"], "name": row["name"], "zone": row["zone"], "kind": row["kind"]}


def _limit(rule: Rule, metadata: Any, level: str) -> float | None:
    key = rule.warning_from if level == "warning" else rule.critical_from
    if key and isinstance(metadata, dict) and isinstance(metadata.get(key), int | float):
        return float(metadata[key])
    return rule.warning if level == "warning" else rule.critical


def threshold_level(
    rule: Rule, value: float | None, warning: float | None, critical: float | None, active: str | None
) -> str | None:
    """critical, warning, hold (an active alert inside the hysteresis band) or None for a value."""
    if value is None:
        return None
    sign = 1.0 if rule.direction == "above" else -1.0
    if critical is not None and sign * (value - critical) >= 0:
        return "critical"
    if warning is not None and sign * (value - warning) >= 0:
        return "warning"
    band = warning if warning is not None else critical
    if active is not None and band is not None and sign * (value - band) > -rule.hysteresis:
        return "hold"
    return None


def _compare(rule: Rule, value: float, limit: float | None) -> str:
    op = ">=" if rule.direction == "above" else "<="
    return f"{rule.metric} {value:.1f} {op} {limit:g}" if limit is not None else f"{rule.metric} {value:.1f}"


async def observe(
    conn: asyncpg.Connection, rule: Rule, active: dict[str, str], only: list[str] | None = None
) -> dict[str, Observation]:
    """Observations of ``rule`` per device; ``active`` maps device -> severity of its active alert.

    ``only``: look at these devices alone (the air rules, which judge zones, always look at all)."""
    out: dict[str, Observation] = {}
    if rule.type in ("threshold", "rate_of_rise"):
        if rule.type == "threshold":
            rows = await conn.fetch(THRESHOLD_SQL, rule.kind, rule.metric, only)
        else:
            rows = await conn.fetch(RISE_SQL, rule.kind, rule.metric, rule.window_s, only)
        for r in rows:
            warning, critical = (
                _limit(rule, r["metadata"], "warning"),
                _limit(rule, r["metadata"], "critical"),
            )
            level = threshold_level(rule, r["value"], warning, critical, active.get(r["device_id"]))
            if level is None and r["device_id"] not in active:
                continue
            value = r["value"]
            limit = critical if level == "critical" else warning
            if value is None:
                message = f"no {rule.metric} reading"
            elif rule.type == "rate_of_rise":
                message = f"{rule.metric} rose {value:.1f} in {rule.window_s / 60:g} min"
            else:
                message = _compare(rule, value, limit)
            out[r["device_id"]] = Observation(level, value, message, _device(r))
    elif rule.type == "event":
        rows = await conn.fetch(EVENT_SQL, rule.kind, rule.window_s, list(rule.event_types), rule.min_confidence, only)
        for r in rows:
            critical = any(s in rule.critical_severities for s in r["severities"])
            level = "critical" if critical else rule.severity
            message = f"{r['n']} x {', '.join(sorted(r['types']))} (confidence up to {r['value']:.2f})"
            out[r["device_id"]] = Observation(level, r["value"], message, _device(r))
    elif rule.type in ("air_quality", "air_suspect"):
        out = await observe_air(conn, rule, active)
    elif rule.type == "forecast":
        for r in await conn.fetch(FORECAST_SQL, rule.kind, rule.metric, rule.observed_rule or "", only):
            obs = _predicted(rule, r)
            if obs.level is not None or r["device_id"] in active:
                out[r["device_id"]] = obs
    elif rule.type == "device_status":
        rows = await conn.fetch(STATUS_SQL, rule.kind, list(rule.statuses), only)
        for r in rows:
            message = f"device {r['status']} for {r['value'] or 0:.0f} s"
            out[r["device_id"]] = Observation(rule.severity, r["value"], message, _device(r))
    return out


AIR_SENSORS_SQL = "SELECT device_id, name, zone, lat, lon, status, kind FROM devices WHERE enabled AND kind = $1"
# The air rules share one reading of the sensors' hourly means (a query of ~0.2 s, docs/air-quality.md) for
# this long: rounds come every few seconds, the conditions are held for 15 minutes to an hour.
AIR_READ_TTL_S = 15.0


@dataclass
class _AirReading:
    """The air sensors and their hourly means, as read at ``at`` (monotonic)."""

    at: float
    sensors: list[dict[str, Any]]
    hours: dict[str, dict[str, list[float | None]]]


_air_reading: _AirReading | None = None


async def _read_air(conn: asyncpg.Connection) -> _AirReading:
    global _air_reading
    if _air_reading is None or time.monotonic() - _air_reading.at >= AIR_READ_TTL_S:
        sensors = [jsonable(dict(r)) for r in await conn.fetch(AIR_SENSORS_SQL, air.KIND)]
        hours = await queries.air_hours(conn, datetime.now(UTC), aqi.METRICS, air.LIVE_HOURS, air.KIND)
        _air_reading = _AirReading(time.monotonic(), sensors, hours)
    return _air_reading


async def observe_air(conn: asyncpg.Connection, rule: Rule, active: dict[str, str]) -> dict[str, Observation]:
    """``air_quality``: each zone's VN_AQI (its worst sensor not suspect) against warning/critical, keyed by the
    zone's first sensor (by id: a zone alert needs a device, and a stable one); ``air_suspect``: each sensor
    that disagrees with its neighbours (``dashboards.air.suspects``), at the rule's severity."""
    reading = await _read_air(conn)
    sensors, hours = reading.sensors, reading.hours
    suspects = air.suspects(sensors, hours)
    out: dict[str, Observation] = {}
    if rule.type == "air_suspect":
        by_id = {s["device_id"]: s for s in sensors}
        for device_id, s in suspects.items():
            message = (
                f"suspect sensor, not pollution: {s['pollutant']} {air.DEFAULT_SUSPECT.window_h} h mean {s['value']} "
                f"vs median {s['median']} of {s['neighbours']} sensors within {air.DEFAULT_SUSPECT.radius_km:g} km "
                f"(robust z {s['z']})"
            )
            out[device_id] = Observation(rule.severity, s["z"], message, _device(by_id[device_id]))
        return out
    zones = [jsonable(dict(r)) for r in await conn.fetch("SELECT zone_id, name FROM zones")]
    view = air.view(zones, sensors, {d: air.sensor(h) for d, h in hours.items()}, suspects)
    for zone in view["zones"]:
        key = min(p["device_id"] for p in view["points"] if p["zone"] == zone["zone_id"])
        level = threshold_level(rule, zone["aqi"], rule.warning, rule.critical, active.get(key))
        if level is None and key not in active:
            continue
        limit = rule.critical if level == "critical" else rule.warning
        message = f"zone AQI {zone['aqi']} ({aqi.NAMES.get(zone['dominant'] or '', '-')} at {zone['device_id']})"
        if limit is not None and level in ("warning", "critical"):
            message += f" >= {limit:g}"
        device = {"device_id": key, "name": zone["name"], "zone": zone["zone_id"], "kind": air.KIND}
        out[key] = Observation(level, zone["aqi"], message, device)
    return out


def _predicted(rule: Rule, r: asyncpg.Record) -> Observation:
    """A forecast rule's view of one device: the most severe level its forecasts cross within the rule's time.

    Once the rule watching the readings (``observed_rule``) has an active alert for the device, the
    forecast has come true: this rule stands down (clear) and says which alert took over.
    """
    if r["observed"] is not None:
        note = f"observed: alert {r['observed']} ({rule.observed_rule})"
        return Observation(None, r["now"], note, _device(r), note=note)
    points = [Point(*p) for p in zip(r["hs"], r["vs"], r["los"], r["his"], strict=True)]
    above = rule.direction == "above"
    for level in ("critical", "warning"):
        limit = _limit(rule, r["metadata"], level)
        c = None if limit is None else crossing(r["now"], points, limit, rule.within_min, above)
        if c is not None and c.probability >= rule.min_probability:
            op = ">=" if above else "<="
            reach = (
                max(p.value for p in points if p.horizon_min <= rule.within_min)
                if above
                else min(p.value for p in points if p.horizon_min <= rule.within_min)
            )
            message = (
                f"forecast: {rule.metric} {op} {c.limit:g} in ~{c.eta_min} min "
                f"({c.probability * 100:.0f} % likely; {reach:.1f} within {rule.within_min} min)"
            )
            return Observation(level, round(reach, 1), message, _device(r))
    return Observation(None, r["now"], f"forecast: {rule.metric} stays clear for {rule.within_min} min", _device(r))

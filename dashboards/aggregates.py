"""Where every number on the wall comes from: the SQL of each view, and the pure functions that shape it.

Live views read ``devices`` + ``latest_values`` (never raw scans), ``alerts``, recent ``events`` and,
for "same time yesterday", ``rollups_1m``. The loaders return JSON-ready dicts (ISO UTC times,
finite numbers) so the hub can diff and send them without further conversion.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dashboards.encoding import iso, jsonable, number
from ioc.thresholds import (
    CONGESTION_RATIOS,
    DEFAULT_DANGER_CM,
    DEFAULT_FREE_FLOW_KMH,
    DEFAULT_WARNING_CM,
    INCIDENT_WINDOW_S,
    MEAN_SPEED_CRITICAL_KMH,
    MEAN_SPEED_WARNING_KMH,
    QUIET_SEVERITY,
)

logger = logging.getLogger(__name__)

Row = dict[str, Any]

TOP_N = 10
EVENTS_N = 50
STATUSES = ("online", "offline", "stale", "unknown")
# Readings from devices in these states are old news: they do not feed live figures.
SILENT = ("offline", "stale")

DEVICE_COLUMNS = (
    "d.device_id, d.kind, d.format, d.vendor, d.name, d.zone, d.lat, d.lon, d.interval_s, d.status, "
    "d.last_seen, d.metadata, (SELECT s.time FROM snapshots s WHERE s.device_id = d.device_id) AS snapshot_at"
)


# ---------------------------------------------------------------- per-device derived figures


def _meta_number(metadata: Row, key: str, default: float) -> float:
    """A finite number from device metadata (not a boolean or text), else ``default``."""
    value = metadata.get(key)
    if type(value) is float or type(value) is int:  # noqa: E721 (exact types: True is not 1 cm)
        return float(value) if math.isfinite(value) else default
    return default


def flood_level(level_cm: float | None, metadata: Row) -> str | None:
    """``ok`` / ``warning`` / ``danger`` from the device's thresholds (metadata warning_cm, danger_cm)."""
    if level_cm is None:
        return None
    if level_cm >= _meta_number(metadata, "danger_cm", DEFAULT_DANGER_CM):
        return "danger"
    if level_cm >= _meta_number(metadata, "warning_cm", DEFAULT_WARNING_CM):
        return "warning"
    return "ok"


def speed_ratio(speed_kmh: float, free_flow_kmh: float) -> float:
    """Speed as a share of the free-flow speed (1.0 when the free-flow speed is not positive)."""
    return speed_kmh / free_flow_kmh if free_flow_kmh > 0 else 1.0


def congestion_band(ratio: float | None) -> int | None:
    """0 free, 1 slow, 2 heavy, 3 jammed from a speed ratio (CONGESTION_RATIOS)."""
    if ratio is None:
        return None
    return next((band for band, least in enumerate(CONGESTION_RATIOS) if ratio >= least), len(CONGESTION_RATIOS))


def congestion(speed_kmh: float | None, metadata: Row) -> int | None:
    """0 free, 1 slow, 2 heavy, 3 jammed from speed / free-flow speed."""
    if speed_kmh is None:
        return None
    return congestion_band(speed_ratio(speed_kmh, _meta_number(metadata, "free_flow_kmh", DEFAULT_FREE_FLOW_KMH)))


def mean_speed_level(speed_kmh: float | None) -> str | None:
    """``critical`` / ``warning`` / ``ok`` for the mean speed of a city or zone (None without one)."""
    if speed_kmh is None:
        return None
    if speed_kmh < MEAN_SPEED_CRITICAL_KMH:
        return "critical"
    return "warning" if speed_kmh < MEAN_SPEED_WARNING_KMH else "ok"


def device_thresholds(kind: str, metadata: Row) -> Row:
    """The thresholds a device's readings are judged by: its metadata's, else the defaults."""
    if kind == "flood":
        return {
            "warning_cm": _meta_number(metadata, "warning_cm", DEFAULT_WARNING_CM),
            "danger_cm": _meta_number(metadata, "danger_cm", DEFAULT_DANGER_CM),
        }
    if kind == "traffic":
        return {"free_flow_kmh": _meta_number(metadata, "free_flow_kmh", DEFAULT_FREE_FLOW_KMH)}
    return {}


def thresholds_meta() -> Row:
    """The defaults and bands behind every level and band the server sends (``meta.thresholds``)."""
    return {
        "flood": {"warning_cm": DEFAULT_WARNING_CM, "danger_cm": DEFAULT_DANGER_CM},
        "traffic": {
            "free_flow_kmh": DEFAULT_FREE_FLOW_KMH,
            "congestion_ratios": list(CONGESTION_RATIOS),
            "mean_speed_critical_kmh": MEAN_SPEED_CRITICAL_KMH,
            "mean_speed_warning_kmh": MEAN_SPEED_WARNING_KMH,
        },
        "cameras": {"incident_window_s": INCIDENT_WINDOW_S, "quiet_severity": QUIET_SEVERITY},
    }


def _value(device: Row, metric: str) -> float | None:
    entry = device["latest"].get(metric)
    return entry["value"] if entry else None


def _derive(device: Row, metadata: Row) -> Row:
    """Set the device's flood level or congestion band from its latest values; returns it."""
    if device["kind"] == "flood":
        device["level"] = flood_level(_value(device, "water_level_cm"), metadata)
    elif device["kind"] == "traffic":
        device["congestion"] = congestion(_value(device, "avg_speed_kmh"), metadata)
    return device


def _device(row: asyncpg.Record, latest: dict[str, Row]) -> Row:
    """A device row and its latest values as the API's device object."""
    metadata = row["metadata"] if isinstance(row["metadata"], dict) else {}
    device: Row = {
        "device_id": row["device_id"],
        "kind": row["kind"],
        "format": row["format"],
        "vendor": row["vendor"],
        "name": row["name"],
        "zone": row["zone"],
        "lat": number(row["lat"]),
        "lon": number(row["lon"]),
        "interval_s": row["interval_s"],
        "status": row["status"],
        "last_seen": iso(row["last_seen"]),
        "snapshot_at": iso(row["snapshot_at"]),  # time of the latest camera snapshot (cache key of its image)
        "metadata": jsonable(metadata),
        "thresholds": device_thresholds(row["kind"], metadata),
        "latest": latest,
        "level": None,
        "congestion": None,
    }
    return _derive(device, metadata)


def _latest_entry(metric: str, part: str, value: Any, time: datetime) -> tuple[str, Row]:
    return (metric if not part else f"{metric}.{part}"), {"value": number(value), "time": iso(time)}


def _filters(
    kind: str | None, zone: str | None, status: str | None, device_ids: list[str] | None
) -> tuple[str, list[Any]]:
    clauses, args = ["d.enabled"], []
    for column, value in (("kind", kind), ("zone", zone), ("status", status)):
        if value is not None:
            args.append(value)
            clauses.append(f"d.{column} = ${len(args)}")
    if device_ids is not None:
        args.append(device_ids)
        clauses.append(f"d.device_id = ANY(${len(args)}::text[])")
    return " AND ".join(clauses), args


async def load_devices(
    conn: asyncpg.Connection,
    *,
    kind: str | None = None,
    zone: str | None = None,
    status: str | None = None,
    device_ids: list[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Row]:
    """Devices (ordered by id) with their latest values, level and congestion."""
    where, args = _filters(kind, zone, status, device_ids)
    page = ""
    if limit is not None:
        args += [limit, offset]
        page = f" LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    rows = await conn.fetch(f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE {where} ORDER BY d.device_id{page}", *args)
    if not rows:
        return []
    ids = [r["device_id"] for r in rows]
    latest: dict[str, dict[str, Row]] = defaultdict(dict)
    for lv in await conn.fetch(
        "SELECT device_id, metric, part, time, value FROM latest_values "
        "WHERE device_id = ANY($1::text[]) ORDER BY device_id, metric, part",
        ids,
    ):
        name, entry = _latest_entry(lv["metric"], lv["part"], lv["value"], lv["time"])
        latest[lv["device_id"]][name] = entry
    return [_device(r, latest.get(r["device_id"], {})) for r in rows]


async def reload_live_fields(conn: asyncpg.Connection, known: dict[str, Row], device_ids: list[str]) -> list[Row]:
    """The ``known`` devices among ``device_ids`` with fresh status, last_seen, snapshot time and latest
    values, in one round trip; the registry fields (name, zone, metadata...) are kept from ``known``.

    This is the live hub's hot path: the ingest names the devices it touched several times a second.
    Registry edits come with their own notification and a full reload. Devices that are no longer
    enabled are missing from the result.
    """
    fresh: dict[str, Row] = {}
    for r in await conn.fetch(
        "SELECT d.device_id, d.status, d.last_seen, s.time AS snapshot_at, lv.metric, lv.part, lv.time, lv.value "
        "FROM devices d LEFT JOIN snapshots s ON s.device_id = d.device_id "
        "LEFT JOIN latest_values lv ON lv.device_id = d.device_id "
        "WHERE d.enabled AND d.device_id = ANY($1::text[])",
        device_ids,
    ):
        device = fresh.get(r["device_id"])
        if device is None:
            base = known[r["device_id"]]
            device = fresh[r["device_id"]] = {
                **base,
                "status": r["status"],
                "last_seen": iso(r["last_seen"]),
                "snapshot_at": iso(r["snapshot_at"]),
                "latest": {},
            }
        if r["metric"] is not None:
            name, entry = _latest_entry(r["metric"], r["part"], r["value"], r["time"])
            device["latest"][name] = entry
    return [_derive(device, device["metadata"]) for device in fresh.values()]


async def count_devices(
    conn: asyncpg.Connection, *, kind: str | None = None, zone: str | None = None, status: str | None = None
) -> int:
    """How many enabled devices match the filters."""
    where, args = _filters(kind, zone, status, None)
    return int(await conn.fetchval(f"SELECT count(*) FROM devices d WHERE {where}", *args))


async def load_zones(conn: asyncpg.Connection, zone_id: str | None = None) -> list[Row]:
    """Zones, priority first then by id."""
    rows = await conn.fetch(
        "SELECT zone_id, name, lat, lon, priority, metadata FROM zones "
        "WHERE ($1::text IS NULL OR zone_id = $1) ORDER BY priority DESC, zone_id",
        zone_id,
    )
    return [jsonable(dict(r)) for r in rows]


# ---------------------------------------------------------------- alerts and events

ALERT_SELECT = """
SELECT a.id, a.rule, a.device_id, d.name AS device_name, a.zone, d.kind, a.severity, a.state, a.title,
       a.message, a.value, a.opened_at, a.updated_at, a.acknowledged_at, a.acknowledged_by, a.note,
       a.resolved_at
FROM alerts a LEFT JOIN devices d ON d.device_id = a.device_id
"""


def alert_row(row: asyncpg.Record) -> Row:
    """An alerts row as the API's alert object."""
    return jsonable(dict(row))  # type: ignore[no-any-return]


async def load_alerts(
    conn: asyncpg.Connection,
    *,
    state: str | None = None,
    severity: str | None = None,
    zone: str | None = None,
    ids: list[int] | None = None,
    limit: int = 1000,
) -> list[Row]:
    """Alerts newest first; ``state`` may be ``active`` (open + acknowledged)."""
    clauses, args = [], []
    if state == "active":
        clauses.append("a.state <> 'resolved'")
    elif state is not None:
        args.append(state)
        clauses.append(f"a.state = ${len(args)}")
    for column, value in (("severity", severity), ("zone", zone)):
        if value is not None:
            args.append(value)
            clauses.append(f"a.{column} = ${len(args)}")
    if ids is not None:
        args.append(ids)
        clauses.append(f"a.id = ANY(${len(args)}::bigint[])")
    args.append(limit)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await conn.fetch(f"{ALERT_SELECT} {where} ORDER BY a.id DESC LIMIT ${len(args)}", *args)
    return [alert_row(r) for r in rows]


def event_row(row: asyncpg.Record) -> Row:
    """An events row as the API's event object (``id`` identifies it in deltas)."""
    event = jsonable(dict(row))
    event["id"] = f"{event['device_id']}|{event['type']}|{event['time']}"
    event["snapshot_url"] = f"/api/v1/devices/{event['device_id']}/snapshot" if row["has_snapshot"] else None
    del event["has_snapshot"]
    return event  # type: ignore[no-any-return]


async def load_events(
    conn: asyncpg.Connection,
    *,
    type: str | None = None,
    device_id: str | None = None,
    zone: str | None = None,
    since: datetime | None = None,
    limit: int = EVENTS_N,
) -> list[Row]:
    """Events newest first, with the device's name and zone."""
    clauses, args = [], []
    for column, value in (("e.type", type), ("e.device_id", device_id), ("d.zone", zone)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if since is not None:
        args.append(since)
        clauses.append(f"e.time >= ${len(args)}")
    args.append(limit)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await conn.fetch(
        "SELECT e.time, e.device_id, d.name AS device_name, d.zone, e.type, e.severity, e.confidence, "
        "e.attrs, "
        "EXISTS (SELECT 1 FROM snapshots s WHERE s.device_id = e.device_id) AS has_snapshot "
        f"FROM events e LEFT JOIN devices d ON d.device_id = e.device_id {where} "
        f"ORDER BY e.time DESC LIMIT ${len(args)}",
        *args,
    )
    return [event_row(r) for r in rows]


async def incidents_by_zone(conn: asyncpg.Connection, at: datetime | None = None) -> dict[str | None, int]:
    """Events other than ``info`` in the INCIDENT_WINDOW_S (an hour) before ``at`` (default now), per zone."""
    rows = await conn.fetch(
        "SELECT d.zone, count(*) AS n FROM events e LEFT JOIN devices d ON d.device_id = e.device_id "
        "WHERE e.time > coalesce($1::timestamptz, now()) - $2::interval "
        "AND e.time <= coalesce($1::timestamptz, now()) "
        "AND e.severity <> $3 GROUP BY d.zone",
        at,
        timedelta(seconds=INCIDENT_WINDOW_S),
        QUIET_SEVERITY,
    )
    return {r["zone"]: int(r["n"]) for r in rows}


async def load_yesterday(conn: asyncpg.Connection, now: datetime) -> Row:
    """The summary's headline figures at the same time yesterday, from 1-minute rollups and events."""
    at = now - timedelta(days=1)
    rows = await conn.fetch(
        """
        SELECT r.device_id, r.metric, max(r.max) AS max, sum(r.sum) / nullif(sum(r.count), 0) AS avg,
               d.metadata, d.interval_s
        FROM rollups_1m r JOIN devices d ON d.device_id = r.device_id
        WHERE r.bucket > $1::timestamptz - interval '5 minutes' AND r.bucket <= $1::timestamptz
          AND r.part = ''
          AND r.metric IN ('water_level_cm', 'avg_speed_kmh', 'vehicle_count', 'interval_s')
        GROUP BY r.device_id, r.metric, d.metadata, d.interval_s
        """,
        at,
    )
    levels: list[float] = []
    speeds: list[float] = []
    flow = 0.0
    warning = 0
    intervals = {r["device_id"]: r["avg"] for r in rows if r["metric"] == "interval_s"}
    for r in rows:
        meta = r["metadata"] if isinstance(r["metadata"], dict) else {}
        if r["metric"] == "water_level_cm" and r["max"] is not None:
            levels.append(r["max"])
            if flood_level(r["max"], meta) in ("warning", "danger"):
                warning += 1
        elif r["metric"] == "avg_speed_kmh" and r["avg"] is not None:
            speeds.append(r["avg"])
        elif r["metric"] == "vehicle_count" and r["avg"] is not None:
            interval = intervals.get(r["device_id"]) or r["interval_s"] or 60
            flow += r["avg"] * 3600.0 / interval
    incidents = await incidents_by_zone(conn, at)
    return {
        "max_level_cm": _round(max(levels)) if levels else None,
        "mean_speed_kmh": _round(sum(speeds) / len(speeds)) if speeds else None,
        "flow_veh_h": round(flow) if rows else None,
        "incidents_1h": sum(incidents.values()),
        "points_warning": warning,
    }


# ---------------------------------------------------------------- pure views over loaded state


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _status_counts(devices: list[Row]) -> Row:
    counts = dict.fromkeys(STATUSES, 0)
    for d in devices:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    return {"total": len(devices), **counts}


def _live(devices: list[Row], kind: str) -> list[Row]:
    return [d for d in devices if d["kind"] == kind and d["status"] not in SILENT]


def _level_rows(live: list[Row]) -> list[tuple[float, str, Row]]:
    """(water level, device id, device) of the live flood devices that report a level."""
    out = []
    for d in live:
        entry = d["latest"].get("water_level_cm")
        if entry and entry["value"] is not None:
            out.append((entry["value"], d["device_id"], d))
    return out


def flood_view(devices: list[Row]) -> Row:
    """Flood headline figures and the 10 highest water levels.

    The summary computes this for the whole fleet several times a second: the top rows are built
    for the 10 shown only.
    """
    live = _live(devices, "flood")
    levels = _level_rows(live)
    rains = [v for d in live if (v := _value(d, "rainfall_mm_h")) is not None]
    # Highest level first, ties by device id (levels are compared as shown, to 0.1 cm).
    top = heapq.nsmallest(TOP_N, levels, key=lambda t: (-round(t[0], 1), t[1]))
    rows = [
        {
            "device_id": d["device_id"],
            "name": d["name"],
            "zone": d["zone"],
            "level_cm": _round(level),
            "level": d["level"],
            **d["thresholds"],
            "rain_mm_h": _round(_value(d, "rainfall_mm_h")),
        }
        for level, _, d in top
    ]
    return {
        "max_level_cm": rows[0]["level_cm"] if rows else None,
        "max_device_id": rows[0]["device_id"] if rows else None,
        "points_warning": sum(1 for d in live if d["level"] in ("warning", "danger")),
        "points_danger": sum(1 for d in live if d["level"] == "danger"),
        "avg_rain_mm_h": _round(sum(rains) / len(rains)) if rains else None,
        "top": rows,
    }


def _flow_and_speeds(live: list[Row]) -> tuple[float | None, list[float]]:
    """Total flow (vehicles/h, None when no detector counts) and the reported speeds of ``live``."""
    speeds: list[float] = []
    flow = 0.0
    flowing = False
    for d in live:
        count = _value(d, "vehicle_count")
        if count is not None:
            interval = _value(d, "interval_s") or d["interval_s"] or 60
            flow += count * 3600.0 / interval
            flowing = True
        speed = _value(d, "avg_speed_kmh")
        if speed is not None:
            speeds.append(speed)
    return (flow if flowing else None), speeds


def traffic_view(devices: list[Row]) -> Row:
    """Traffic headline figures and the 10 most congested detectors."""
    live = _live(devices, "traffic")
    flow, speeds = _flow_and_speeds(live)
    worst = heapq.nsmallest(TOP_N, _speed_ratios(live), key=lambda w: (w[0], w[1]))
    mean_speed = _round(sum(speeds) / len(speeds)) if speeds else None
    return {
        "mean_speed_kmh": mean_speed,
        "mean_speed_level": mean_speed_level(mean_speed),
        "flow_veh_h": round(flow) if flow is not None else None,
        "congested": sum(1 for d in live if (d["congestion"] or 0) >= 2),
        "worst": [
            {
                "device_id": d["device_id"],
                "name": d["name"],
                "zone": d["zone"],
                "speed_kmh": _round(speed),
                "free_flow_kmh": d["thresholds"]["free_flow_kmh"],
                "speed_ratio": round(ratio, 3),
                "congestion": d["congestion"],
            }
            for ratio, _, speed, d in worst
        ],
    }


def _speed_ratios(live: list[Row]) -> list[tuple[float, str, float, Row]]:
    """(speed ratio, device id, speed, device) of the live traffic devices that report a speed."""
    out = []
    for d in live:
        speed = _value(d, "avg_speed_kmh")
        if speed is not None:
            out.append((speed_ratio(speed, d["thresholds"]["free_flow_kmh"]), d["device_id"], speed, d))
    return out


def alert_counts(alerts: list[Row]) -> Row:
    """Open (active), critical and unacknowledged alert counts."""
    active = [a for a in alerts if a["state"] != "resolved"]
    return {
        "open": len(active),
        "critical": sum(1 for a in active if a["severity"] == "critical"),
        "unacknowledged": sum(1 for a in active if a["state"] == "open"),
    }


def zone_state(devices: list[Row], alerts: list[Row]) -> str:
    """critical (critical alert or danger level), warning (any alert, warning level, jam) or ok."""
    active = [a for a in alerts if a["state"] != "resolved"]
    if any(a["severity"] == "critical" for a in active) or any(
        d["level"] == "danger" for d in devices if d["status"] not in SILENT
    ):
        return "critical"
    if active or any(d["level"] == "warning" or d["congestion"] == 3 for d in devices if d["status"] not in SILENT):
        return "warning"
    return "ok"


def zone_entry(zone: Row, devices: list[Row], alerts: list[Row], incidents: int) -> Row:
    """One zone's line in the summary."""
    levels = _level_rows(_live(devices, "flood"))
    traffic = _live(devices, "traffic")
    _, speeds = _flow_and_speeds(traffic)
    ratios = [r for r, _, _, _ in _speed_ratios(traffic)]
    return {
        "zone_id": zone["zone_id"],
        "name": zone["name"],
        "priority": zone["priority"],
        "state": zone_state(devices, alerts),
        "flood_max_cm": _round(max(level for level, _, _ in levels)) if levels else None,
        "speed_kmh": _round(sum(speeds) / len(speeds)) if speeds else None,
        "congestion": congestion_band(sum(ratios) / len(ratios)) if ratios else None,
        "incidents_1h": incidents,
        "open_alerts": sum(1 for a in alerts if a["state"] != "resolved"),
    }


def summary_view(
    zones: list[Row], devices: list[Row], alerts: list[Row], incidents: dict[str | None, int], yesterday: Row
) -> Row:
    """The ``summary`` channel: the whole city on one screen."""
    by_kind: dict[str, list[Row]] = defaultdict(list)
    by_zone: dict[str | None, list[Row]] = defaultdict(list)
    for d in devices:
        by_kind[d["kind"]].append(d)
        by_zone[d["zone"]].append(d)
    alerts_by_zone: dict[str | None, list[Row]] = defaultdict(list)
    for a in alerts:
        alerts_by_zone[a["zone"]].append(a)
    return {
        "devices": {
            **_status_counts(devices),
            "by_kind": {k: _status_counts(v) for k, v in sorted(by_kind.items())},
        },
        "flood": flood_view(devices),
        "traffic": traffic_view(devices),
        "cameras": {"incidents_1h": sum(incidents.values())},
        "alerts": alert_counts(alerts),
        "zones": [
            zone_entry(
                z,
                by_zone.get(z["zone_id"], []),
                alerts_by_zone.get(z["zone_id"], []),
                incidents.get(z["zone_id"], 0),
            )
            for z in zones
        ],
        "yesterday": yesterday,
    }


def zone_view(zone: Row, devices: list[Row], alerts: list[Row], incidents: int) -> Row:
    """The ``zone:{id}`` channel: one zone's devices, figures and active alerts."""
    return {
        "zone": zone,
        "state": zone_state(devices, alerts),
        "devices": devices,
        "flood": flood_view(devices),
        "traffic": traffic_view(devices),
        "cameras": {"incidents_1h": incidents},
        "alerts": [a for a in alerts if a["state"] != "resolved"],
    }


def zone_summary(zone: Row, devices: list[Row], alerts: list[Row], incidents: int) -> Row:
    """A zone for ``GET /zones``: its row plus its summary line and device counts."""
    entry = zone_entry(zone, devices, alerts, incidents)
    entry.pop("zone_id")
    entry.pop("name")
    entry.pop("priority")
    return {**zone, "summary": {**entry, "devices": _status_counts(devices)}}

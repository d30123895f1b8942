"""Queries: the live server's SQL, each returning JSON-ready rows (ISO UTC times, finite numbers).

Live views read ``devices`` + ``latest_values`` (never raw scans), ``alerts``, recent ``events`` and,
for "same time yesterday", ``rollups_1m``. A device row comes with its latest values and the level or
congestion band ``figures`` derives from them, so the hub can diff and send it without further work.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dashboards.encoding import iso, jsonable, number
from dashboards.figures import device_thresholds, with_bands
from ioc.thresholds import INCIDENT_WINDOW_S, QUIET_SEVERITY

Row = dict[str, Any]

EVENTS_N = 50

DEVICE_COLUMNS = (
    "d.device_id, d.kind, d.format, d.vendor, d.name, d.zone, d.lat, d.lon, d.interval_s, d.status, "
    "d.last_seen, d.metadata, (SELECT s.time FROM snapshots s WHERE s.device_id = d.device_id) AS snapshot_at"
)


# ---------------------------------------------------------------- devices and zones


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
    return with_bands(device, metadata)


def _latest_entry(metric: str, part: str, value: Any, time: datetime) -> tuple[str, Row]:
    return (metric if not part else f"{metric}.{part}"), {"value": number(value), "time": iso(time)}


class _Where:
    """A WHERE clause built from optional filters, and its numbered arguments."""

    def __init__(self, *always: str) -> None:
        self.clauses = list(always)
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        """Add an argument; returns its placeholder (``$n``)."""
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, clause: str, value: Any) -> None:
        """Add ``clause`` (``{}`` stands for the argument) unless ``value`` is None."""
        if value is not None:
            self.clauses.append(clause.format(self.arg(value)))

    def sql(self) -> str:
        """``WHERE ...``, or nothing without a filter."""
        return f"WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


def _device_filters(
    kind: str | None, zone: str | None, status: str | None, device_ids: list[str] | None
) -> _Where:
    where = _Where("d.enabled")
    for column, value in (("kind", kind), ("zone", zone), ("status", status)):
        where.add(f"d.{column} = {{}}", value)
    where.add("d.device_id = ANY({}::text[])", device_ids)
    return where


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
    where = _device_filters(kind, zone, status, device_ids)
    page = f" LIMIT {where.arg(limit)} OFFSET {where.arg(offset)}" if limit is not None else ""
    sql = f"SELECT {DEVICE_COLUMNS} FROM devices d {where.sql()} ORDER BY d.device_id{page}"
    rows = await conn.fetch(sql, *where.args)
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
    return [with_bands(device, device["metadata"]) for device in fresh.values()]


async def count_devices(
    conn: asyncpg.Connection, *, kind: str | None = None, zone: str | None = None, status: str | None = None
) -> int:
    """How many enabled devices match the filters."""
    where = _device_filters(kind, zone, status, None)
    return int(await conn.fetchval(f"SELECT count(*) FROM devices d {where.sql()}", *where.args))


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
    where = _Where("a.state <> 'resolved'") if state == "active" else _Where()
    if state != "active":
        where.add("a.state = {}", state)
    for column, value in (("severity", severity), ("zone", zone)):
        where.add(f"a.{column} = {{}}", value)
    where.add("a.id = ANY({}::bigint[])", ids)
    sql = f"{ALERT_SELECT} {where.sql()} ORDER BY a.id DESC LIMIT {where.arg(limit)}"
    rows = await conn.fetch(sql, *where.args)
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
    where = _Where()
    for column, value in (("e.type", type), ("e.device_id", device_id), ("d.zone", zone)):
        where.add(f"{column} = {{}}", value)
    where.add("e.time >= {}", since)
    sql = (
        "SELECT e.time, e.device_id, d.name AS device_name, d.zone, e.type, e.severity, e.confidence, "
        "e.attrs, "
        "EXISTS (SELECT 1 FROM snapshots s WHERE s.device_id = e.device_id) AS has_snapshot "
        f"FROM events e LEFT JOIN devices d ON d.device_id = e.device_id {where.sql()} "
        f"ORDER BY e.time DESC LIMIT {where.arg(limit)}"
    )
    rows = await conn.fetch(sql, *where.args)
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


async def yesterday_rows(conn: asyncpg.Connection, at: datetime) -> list[Row]:
    """Per device and metric, the 1-minute rollups of the five minutes up to ``at`` (for ``figures.yesterday``)."""
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
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- air quality

# Hourly means of the air sensors' pollutants: hour h (0 = the latest) is the 60 minutes ending h hours before
# $1. Settled minutes come from the 1-minute rollups, the rest (still dirty, or the open minute) from raw rows.
AIR_HOURS_SQL = """
WITH settled AS (
    SELECT LEAST(date_trunc('minute', $1::timestamptz), (SELECT min(bucket) FROM rollup_dirty)) AS upto
), air AS (
    SELECT device_id FROM devices WHERE enabled AND kind = $2 AND ($5::text[] IS NULL OR device_id = ANY($5))
)
SELECT device_id, metric, floor(extract(epoch FROM $1::timestamptz - t) / 3600)::int AS h,
       sum(s) / nullif(sum(n), 0) AS mean
FROM (
    SELECT r.device_id, r.metric, r.bucket AS t, r.sum AS s, r.count AS n FROM rollups_1m r, settled
    WHERE r.device_id IN (SELECT device_id FROM air) AND r.metric = ANY($3::text[]) AND r.part = ''
      AND r.bucket > $1::timestamptz - make_interval(hours => $4) AND r.bucket < settled.upto
    UNION ALL
    SELECT m.device_id, m.metric, m.time, m.value, 1 FROM measurements m, settled
    WHERE m.device_id IN (SELECT device_id FROM air) AND m.metric = ANY($3::text[]) AND m.part = ''
      AND m.time >= settled.upto AND m.time > $1::timestamptz - make_interval(hours => $4)
      AND m.time <= $1::timestamptz
) AS combined
GROUP BY 1, 2, 3
"""


async def air_hours(
    conn: asyncpg.Connection,
    at: datetime,
    metrics: dict[str, str],
    hours: int,
    kind: str,
    device_ids: list[str] | None = None,
) -> dict[str, dict[str, list[float | None]]]:
    """Per air device, each pollutant's hourly means newest first (``hours`` of them, None where empty).

    ``metrics`` maps a pollutant to the metric it is read from.
    """
    by_metric = {m: p for p, m in metrics.items()}
    out: dict[str, dict[str, list[float | None]]] = {}
    for r in await conn.fetch(AIR_HOURS_SQL, at, kind, list(by_metric), hours, device_ids):
        if r["mean"] is None or not 0 <= r["h"] < hours:
            continue
        series = out.setdefault(r["device_id"], {}).setdefault(by_metric[r["metric"]], [None] * hours)
        series[r["h"]] = number(r["mean"])
    return out

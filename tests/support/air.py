"""Air sensors with hours of history, written straight into the database (the rows the ingest would write).

Each hourly mean is one 1-minute rollup row half an hour into its hour (hour 0 = the 60 minutes up to now),
so the live server's hourly means are exactly the values given. The devices report every hour
(``interval_s``), so a long test never sees them go stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from ioc import aqi
from ioc.db import NOTIFY_CHANNEL, REGISTRY_CHANNEL


@dataclass(frozen=True)
class Sensor:
    """One air sensor: where it is and each pollutant's hourly means, newest first."""

    device_id: str
    lat: float
    lon: float
    hours: dict[str, list[float]] = field(default_factory=dict)


async def seed_air(pool: asyncpg.Pool, zone: str, zone_name: str, sensors: list[Sensor]) -> datetime:
    """Create the zone and its sensors (online) with their history and latest values; returns the reference now."""
    now: datetime = await pool.fetchval("SELECT now()")
    lat = sum(s.lat for s in sensors) / len(sensors)
    lon = sum(s.lon for s in sensors) / len(sensors)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO zones (zone_id, name, lat, lon) VALUES ($1, $2, $3, $4) ON CONFLICT (zone_id) DO NOTHING",
            zone,
            zone_name,
            lat,
            lon,
        )
        for s in sensors:
            await conn.execute(
                "INSERT INTO devices (device_id, kind, name, zone, lat, lon, interval_s, status, status_since, "
                "last_seen) VALUES ($1, 'air', $1, $2, $3, $4, 3600, 'online', $5, $5) "
                "ON CONFLICT (device_id) DO UPDATE SET status = 'online', last_seen = $5, zone = $2",
                s.device_id,
                zone,
                s.lat,
                s.lon,
                now,
            )
            await write_hours(conn, s.device_id, s.hours, now)
    return now


async def write_hours(conn: asyncpg.Connection, device_id: str, hours: dict[str, list[float]], now: datetime) -> None:
    """Replace a sensor's rollups with one row per hourly mean, and set its latest values to the newest hour."""
    metrics = [aqi.METRICS[p] for p in hours]
    await conn.execute("DELETE FROM rollups_1m WHERE device_id = $1 AND metric = ANY($2::text[])", device_id, metrics)
    rows = [
        (now - timedelta(minutes=60 * h + 30), device_id, aqi.METRICS[p], 1, v, v, v)
        for p, series in hours.items()
        for h, v in enumerate(series)
    ]
    await conn.executemany(
        "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
        "VALUES (date_trunc('minute', $1::timestamptz), $2, $3, '', $4, $5, $6, $7)",
        rows,
    )
    await conn.executemany(
        "INSERT INTO latest_values (device_id, metric, part, time, value) VALUES ($1, $2, '', $3, $4) "
        "ON CONFLICT (device_id, metric, part) DO UPDATE SET time = $3, value = $4",
        [(device_id, aqi.METRICS[p], now - timedelta(minutes=30), series[0]) for p, series in hours.items()],
    )


async def announce(pool: asyncpg.Pool, device_ids: list[str]) -> None:
    """Tell the live servers these devices have new rows (the notice a commit of the ingest sends)."""
    await pool.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, json.dumps({"w": "test", "devices": device_ids}))


async def remove_air(pool: asyncpg.Pool, device_ids: list[str], zone: str | None = None) -> None:
    """Delete the sensors (their rows everywhere) and, if given, their zone; the servers reload the registry."""
    async with pool.acquire() as conn, conn.transaction():
        for table in ("rollups_1m", "measurements", "latest_values", "alerts", "devices"):
            await conn.execute(f"DELETE FROM {table} WHERE device_id = ANY($1::text[])", device_ids)  # noqa: S608
        if zone is not None:
            await conn.execute("DELETE FROM alerts WHERE zone = $1", zone)
            await conn.execute("DELETE FROM zones WHERE zone_id = $1", zone)
    await pool.execute("SELECT pg_notify($1, 'test')", REGISTRY_CHANNEL)

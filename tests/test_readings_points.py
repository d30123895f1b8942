"""dashboards.readings: bucketed points formatted by PostgreSQL are exactly what the Python encoders would send."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from dashboards import readings
from dashboards.encoding import iso, number
from ioc.timescale import INSTALLED_VERSION_SQL

START = datetime(2025, 3, 9, 23, 0, tzinfo=UTC)  # buckets over a month's and a year's turn are printed alike
VALUES = [1.25, math.nan, -3.5, math.inf, 7.0, -math.inf, 0.1, 2.0]


async def _device(pool: asyncpg.Pool) -> str:
    device_id = f"PTS-{uuid.uuid4().hex[:8]}"
    await pool.execute("INSERT INTO devices (device_id, kind, name) VALUES ($1, 'flood', $1)", device_id)
    minutes = [START + timedelta(minutes=i, seconds=17, microseconds=250) for i in range(len(VALUES))]
    await pool.executemany(
        "INSERT INTO measurements (time, device_id, metric, part, value) VALUES ($1, $2, 'water_level_cm', '', $3)",
        [(t, device_id, v) for t, v in zip(minutes, VALUES, strict=True)],
    )
    await pool.executemany(
        "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
        "VALUES ($1, $2, 'water_level_cm', '', 1, $3, $3, $3)",
        [(t.replace(second=0, microsecond=0), device_id, v) for t, v in zip(minutes, VALUES, strict=True)],
    )
    return device_id


def _expected(rows: list[asyncpg.Record]) -> list[dict[str, object]]:
    """The points as dashboards.encoding would make them from the rows' own times and values."""
    return [
        {"t": iso(r["t"]), "avg": number(r["avg"]), "min": number(r["min"]), "max": number(r["max"]), "count": r["n"]}
        for r in rows
    ]


async def test_bucketed_points_match_the_python_encoders(pool: asyncpg.Pool) -> None:
    device_id = await _device(pool)
    timescale = await pool.fetchval(INSTALLED_VERSION_SQL) is not None
    end = START + timedelta(hours=1)
    for bucket, source in (("1m", "bucket"), ("2m", "bucket"), ("30s", "time"), ("1d", "bucket")):
        q = readings.make_query(device_id, "water_level_cm", "", START - timedelta(days=1), end, bucket)
        table = "rollups_1m" if source == "bucket" else "measurements"
        value = "sum" if source == "bucket" else "value"
        width = timedelta(seconds=q.seconds or 0)
        rows = await pool.fetch(
            f"SELECT date_bin($1::interval, {source}, timestamptz '1970-01-01') AS t, avg({value}) AS avg, "
            f"min({value}) AS min, max({value}) AS max, count(*)::int AS n FROM {table} "
            f"WHERE device_id = $2 GROUP BY 1 ORDER BY 1",
            width,
            device_id,
        )
        async with pool.acquire() as conn:
            points = await readings.fetch(conn, q, timescale=timescale)
        assert points == _expected(rows), bucket
        assert any(p["avg"] is None for p in points) and all(p["t"].endswith("Z") for p in points)  # type: ignore[union-attr]

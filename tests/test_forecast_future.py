"""The forecaster cannot see the future: training and forecasts at an origin T read only rows before T.

Real PostgreSQL: a small synthetic city is stored in rollups_1m, models are trained and a forecast round
run at T; then every row at or after T is altered (and more are added) and both are done again: the
stored model and every forecast must be identical. A control alters one minute before T and must
change the forecasts (so the comparison can fail).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from forecast import inference, training
from forecast.tide import load_tide

T0 = datetime(2020, 3, 2, tzinfo=UTC)  # a quiet stretch of the test database nobody else writes
DAYS = 4
ORIGIN = T0 + timedelta(days=DAYS)
FLOODS = [("fc-future-f1", 10.80, 106.70), ("fc-future-f2", 10.81, 106.71), ("fc-future-f3", 10.79, 106.72)]
TRAFFIC = [("fc-future-t1", 10.80, 106.701), ("fc-future-t2", 10.82, 106.69)]
IDS = [d for d, *_ in FLOODS + TRAFFIC]


def _city(minutes: int) -> list[tuple[datetime, str, str, float]]:
    """Minute values: storms that fill the streets with a lag, a tide floor, a daily traffic wave."""
    rng = np.random.default_rng(5)
    t = np.arange(minutes)
    rain = np.zeros(minutes)
    for start in rng.integers(0, minutes - 180, 10):
        rain[start : start + 90] += rng.uniform(30, 90) * np.hanning(90)
    rows = []
    for n, (device_id, *_) in enumerate(FLOODS):
        delay = 10 * n
        r = np.roll(rain, delay)
        level = np.zeros(minutes)
        for i in range(1, minutes):
            level[i] = level[i - 1] + (max(0.0, r[i] - 25) * 0.05) - level[i - 1] / 20
        level += np.maximum(0, 6 * np.cos(2 * np.pi * t / 745.2)) + rng.normal(0, 0.3, minutes)
        rows += [(T0 + timedelta(minutes=int(i)), device_id, "water_level_cm", max(0.0, float(level[i]))) for i in t]
        rows += [(T0 + timedelta(minutes=int(i)), device_id, "rainfall_mm_h", float(r[i])) for i in t]
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (t % 1440) / 1440)
    for device_id, *_ in TRAFFIC:
        speed = 45 - 25 * wave + rng.normal(0, 2, minutes)
        count = 10 + 40 * wave + rng.normal(0, 3, minutes)
        rows += [(T0 + timedelta(minutes=int(i)), device_id, "avg_speed_kmh", float(speed[i])) for i in t]
        rows += [(T0 + timedelta(minutes=int(i)), device_id, "vehicle_count", max(0.0, float(count[i]))) for i in t]
    return rows


@pytest.fixture
async def city(pool: asyncpg.Pool) -> None:
    """The synthetic devices and DAYS days plus three hours of their minute rollups."""
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM rollups_1m WHERE device_id = ANY($1::text[])", IDS)
        await conn.execute("DELETE FROM forecasts")
        await conn.execute("DELETE FROM forecast_models")
        for (device_id, lat, lon), kind in [(f, "flood") for f in FLOODS] + [(t, "traffic") for t in TRAFFIC]:
            await conn.execute(
                "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, $2, $1, $3, $4) "
                "ON CONFLICT (device_id) DO UPDATE SET enabled = true",
                device_id,
                kind,
                lat,
                lon,
            )
        rows = _city(DAYS * 1440 + 180)
        await conn.copy_records_to_table(
            "rollups_1m",
            records=[(b, d, m, "", 1, v, v, v) for b, d, m, v in rows],
            columns=["bucket", "device_id", "metric", "part", "count", "sum", "min", "max"],
        )


async def _train_and_forecast(conn: asyncpg.Connection) -> tuple[bytes, bytes, dict[tuple[str, str, int], tuple]]:
    tide = load_tide()
    done = await training.train_all(conn, tide, DAYS, threads=1, until=ORIGIN)
    assert done.model_ids["flood"] and done.model_ids["traffic"], done
    rows, _ = await inference.Forecaster(tide).round(conn, now=ORIGIN)
    assert rows > 0
    ids = list(done.model_ids.values())
    stored = await conn.fetch("SELECT kind, model FROM forecast_models WHERE id = ANY($1::bigint[])", ids)
    blobs = {r["kind"]: bytes(r["model"]) for r in stored}
    found = await conn.fetch(
        "SELECT device_id, metric, horizon_min, value, lower, upper, method FROM forecasts "
        "WHERE device_id = ANY($1::text[])",
        IDS,
    )
    forecasts = {(r["device_id"], r["metric"], r["horizon_min"]): tuple(r.values())[3:] for r in found}
    return blobs["flood"], blobs["traffic"], forecasts


async def test_training_and_forecasts_ignore_every_row_after_the_origin(pool: asyncpg.Pool, city: None) -> None:
    async with pool.acquire() as conn:
        flood, traffic, forecasts = await _train_and_forecast(conn)
        assert {k[1] for k in forecasts} == {"water_level_cm", "avg_speed_kmh", "vehicle_count"}
        assert all(v[3] == "model" for v in forecasts.values())
        # Rewrite the future: every value at or after the origin, and another day of rows.
        changed = await conn.execute(
            "UPDATE rollups_1m SET sum = sum * 3 + 40, min = min * 3 + 40, max = max * 3 + 40 "
            "WHERE device_id = ANY($1::text[]) AND bucket >= $2",
            IDS,
            ORIGIN,
        )
        assert changed == f"UPDATE {180 * 2 * len(IDS)}"
        later = ORIGIN + timedelta(hours=3)
        await conn.copy_records_to_table(
            "rollups_1m",
            records=[
                (later + timedelta(minutes=i), d, m, "", 1, 99.0, 99.0, 99.0)
                for i in range(1440)
                for d in IDS
                for m in ("water_level_cm", "rainfall_mm_h", "avg_speed_kmh", "vehicle_count")
            ],
            columns=["bucket", "device_id", "metric", "part", "count", "sum", "min", "max"],
        )
        flood2, traffic2, forecasts2 = await _train_and_forecast(conn)
        assert flood2 == flood, "the flood model changed with data after its training origin"
        assert traffic2 == traffic, "the traffic model changed with data after its training origin"
        assert forecasts2 == forecasts

        # Control: the newest minute before the origin does count.
        await conn.execute(
            "UPDATE rollups_1m SET sum = sum + 25 WHERE device_id = ANY($1::text[]) AND bucket = $2",
            IDS,
            ORIGIN - timedelta(minutes=1),
        )
        _, _, forecasts3 = await _train_and_forecast(conn)
        moved = [k for k in forecasts if not math.isclose(forecasts3[k][0], forecasts[k][0], abs_tol=1e-9)]
        assert len(moved) > len(forecasts) // 2

"""1-minute rollups kept by the ingest as data arrives (late data included), and retention by age."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ingest.rollups import apply_retention
from tests.support.stack import Broker, mosquitto_pub, register_devices, wait_rows

pytestmark = pytest.mark.usefixtures("ingest")

MINUTE = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)


def reading(device: str, at: datetime, level: float) -> tuple[str, bytes]:
    doc = {"ts": at.isoformat(), "metrics": {"water_level_cm": level}}
    return f"ioc/v1/flood/{device}/telemetry", json.dumps(doc).encode()


async def rollup(pool: asyncpg.Pool, device: str, count: int) -> asyncpg.Record:
    rows = await wait_rows(
        pool,
        "SELECT count, sum, min, max FROM rollups_1m WHERE device_id = $1 AND metric = 'water_level_cm' "
        "AND bucket = $2 AND count = $3",
        device,
        MINUTE,
        count,
        timeout=30,
    )
    return rows[0]


async def test_rollups_follow_the_data_and_late_readings(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-ROLL-1", "flood", "canonical"))
    for i, level in enumerate((10.0, 12.0, 14.0, 11.0, 13.0)):
        mosquitto_pub(broker, *reading("T-ROLL-1", MINUTE + timedelta(seconds=5 + 10 * i), level))
    first = await rollup(pool, "T-ROLL-1", 5)
    assert (first["sum"], first["min"], first["max"]) == (60.0, 10.0, 14.0)
    # A reading for the same minute arrives late: the minute is recomputed, not double counted.
    mosquitto_pub(broker, *reading("T-ROLL-1", MINUTE + timedelta(seconds=58), 30.0))
    mosquitto_pub(broker, *reading("T-ROLL-1", MINUTE + timedelta(seconds=5), 10.0))  # a duplicate of the first
    late = await rollup(pool, "T-ROLL-1", 6)
    assert (late["sum"], late["min"], late["max"]) == (90.0, 10.0, 30.0)
    assert await pool.fetchval("SELECT count(*) FROM rollup_dirty WHERE bucket = $1", MINUTE) == 0


async def test_retention_drops_old_raw_rows_and_old_rollups_only(pool: asyncpg.Pool) -> None:
    old, ancient, recent = (datetime.now(UTC) - timedelta(days=d) for d in (40, 6 * 365, 1))
    await pool.execute(
        "INSERT INTO measurements (time, device_id, metric, value) VALUES ($1, 'T-RET-1', 'water_level_cm', 1), "
        "($2, 'T-RET-1', 'water_level_cm', 2)",
        old,
        recent,
    )
    await pool.execute(
        "INSERT INTO rollups_1m (bucket, device_id, metric, count, sum, min, max) VALUES "
        "($1, 'T-RET-1', 'water_level_cm', 1, 1, 1, 1), ($2, 'T-RET-1', 'water_level_cm', 1, 1, 1, 1)",
        ancient,
        old,
    )
    async with pool.acquire() as conn:
        await apply_retention(conn, raw_days=30, rollup_days=5 * 365)
    raw = await pool.fetch("SELECT time FROM measurements WHERE device_id = 'T-RET-1'")
    rolled = await pool.fetch("SELECT bucket FROM rollups_1m WHERE device_id = 'T-RET-1'")
    assert [r["time"] for r in raw] == [recent]
    assert [r["bucket"] for r in rolled] == [old]  # rollups outlive raw rows


async def test_retention_drops_old_quarantine_samples_and_counts(pool: asyncpg.Pool) -> None:
    old, recent = (datetime.now(UTC) - timedelta(days=d) for d in (40, 1))
    for at in (old, recent):
        await pool.execute(
            "INSERT INTO quarantine (received_at, topic, payload, reason, device_id) "
            "VALUES ($1, 'ioc/v1/flood/T-RET-Q/telemetry', 'x', 'bad_json', 'T-RET-Q')",
            at,
        )
        await pool.execute(
            "INSERT INTO quarantine_overflow (device_id, reason, window_start, messages, bytes, first_at, last_at, "
            "last_topic) VALUES ('T-RET-Q', 'bad_json', $1, 5, 5, $1, $1, 'ioc/v1/flood/T-RET-Q/telemetry')",
            at,
        )
    async with pool.acquire() as conn:
        await apply_retention(conn, raw_days=30, rollup_days=5 * 365)
    kept = await pool.fetch("SELECT received_at FROM quarantine WHERE device_id = 'T-RET-Q'")
    counted = await pool.fetch("SELECT last_at FROM quarantine_overflow WHERE device_id = 'T-RET-Q'")
    assert [r["received_at"] for r in kept] == [recent]
    assert [r["last_at"] for r in counted] == [recent]

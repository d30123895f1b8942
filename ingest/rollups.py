"""1-minute rollups recomputed from raw rows for the minutes writers marked dirty, and retention."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

logger = logging.getLogger(__name__)

# A minute is recomputed once it has closed (plus a grace period for stragglers); a late row re-marks it.
CLAIM_DIRTY = """
DELETE FROM rollup_dirty WHERE bucket <= now() - interval '1 minute' - make_interval(secs => $1)
RETURNING bucket
"""
RECOMPUTE = """
INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max)
SELECT $1::timestamptz, device_id, metric, part, count(*), sum(value), min(value), max(value)
FROM measurements WHERE time >= $1::timestamptz AND time < $1::timestamptz + interval '1 minute'
GROUP BY device_id, metric, part
ON CONFLICT (device_id, metric, part, bucket) DO UPDATE
SET count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max
"""


async def refresh(conn: asyncpg.Connection, grace_s: float = 5.0) -> int:
    """Recompute every closed dirty minute in one transaction; returns how many minutes."""
    async with conn.transaction():
        buckets: list[datetime] = sorted({r["bucket"] for r in await conn.fetch(CLAIM_DIRTY, grace_s)})
        for bucket in buckets:
            await conn.execute(RECOMPUTE, bucket)
    return len(buckets)


async def apply_retention(conn: asyncpg.Connection, raw_days: int, rollup_days: int) -> None:
    """Drop raw rows older than ``raw_days`` and rollups older than ``rollup_days`` (chunks where possible)."""
    timescale = await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    for table, column, days in (
        ("measurements", "time", raw_days),
        ("events", "time", raw_days),
        ("rollups_1m", "bucket", rollup_days),
    ):
        if timescale:
            await conn.execute(f"SELECT drop_chunks('{table}', older_than => now() - make_interval(days => $1))", days)
        else:
            await conn.execute(f"DELETE FROM {table} WHERE {column} < now() - make_interval(days => $1)", days)
    await conn.execute("DELETE FROM quarantine WHERE received_at < now() - make_interval(days => $1)", raw_days)
    await conn.execute("DELETE FROM quarantine_overflow WHERE last_at < now() - make_interval(days => $1)", raw_days)

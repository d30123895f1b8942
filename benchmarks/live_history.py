"""Part 3 of bench_live: a device's readings history over >= 10 million raw rows, through the REST API."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from common import ms

from tests.support.live import session_headers


async def bulk_rows(pool: asyncpg.Pool, rows: int, devices: int) -> None:
    """>= ``rows`` raw rows over ``devices`` history devices at 10 s, and their 1-minute rollups."""
    per_device = rows // devices + 1
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(seconds=10 * per_device)
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone) VALUES ($1, 'flood', $1, 'q1') ON CONFLICT DO NOTHING",
        [(f"HIST-{i:03d}",) for i in range(devices)],
    )
    started = time.monotonic()

    async def one(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO measurements (time, device_id, metric, part, value) "
                "SELECT t, $1, 'water_level_cm', '', 10 + 5 * sin(extract(epoch FROM t) / 3600) "
                "FROM generate_series($2::timestamptz, $3::timestamptz, interval '10 seconds') t",
                f"HIST-{i:03d}",
                start,
                end - timedelta(seconds=10),
            )
            await conn.execute(
                "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
                "SELECT time_bucket('1 minute', time), device_id, metric, part, count(*), sum(value), "
                "min(value), max(value) FROM measurements WHERE device_id = $1 GROUP BY 1, 2, 3, 4 "
                "ON CONFLICT DO NOTHING",
                f"HIST-{i:03d}",
            )

    sem = asyncio.Semaphore(4)

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(limited(i) for i in range(devices)))
    total = await pool.fetchval("SELECT count(*) FROM measurements")
    await pool.execute("ANALYZE measurements; ANALYZE rollups_1m")
    print(f"[3] generated {total:,} raw rows (+ rollups) in {time.monotonic() - started:.0f} s")


async def readings_latency(base: str, token: str, devices: int, requests: int) -> None:
    """Part 3: 24 h at 1-minute buckets, and 1 h raw, through the REST API."""
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=session_headers(token)) as http:
        for bucket, span in (("1m", timedelta(hours=24)), ("raw", timedelta(hours=1))):
            times = []
            points = 0
            for i in range(requests):
                end = datetime.now(UTC) - timedelta(hours=i % 48)
                params = {
                    "metric": "water_level_cm",
                    "from": (end - span).isoformat(),
                    "to": end.isoformat(),
                    "bucket": bucket,
                }
                t0 = time.perf_counter()
                resp = await http.get(f"/api/v1/devices/HIST-{i % devices:03d}/readings", params=params)
                times.append(time.perf_counter() - t0)
                points = len(resp.json()["points"])
            print(f"    readings {span} at {bucket} ({points} points): {ms(times)}")

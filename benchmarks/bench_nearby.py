"""Nearby-devices benchmark (``make bench-nearby``): p50/p95/p99 of ``incidents.nearby`` on 10,000 devices.

Its own embedded stack; DEVICES devices (cameras, flood sensors, traffic detectors in equal parts) placed at
random over a 28 x 33 km box around Ho Chi Minh City (the demo fleet's extent), then QUERIES nearby queries
(500 m radius, at most 20 per kind) at random points of the box, each timed from the client: with the
``devices_lat_lon`` index, then with index scans turned off (what the bounding box buys). Prints figures,
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pct, private_stack, progress  # noqa: E402

from incidents.nearby import NEARBY, nearby_devices, with_readings
from ioc.cluster import remove_linked_clusters
from ioc.db import create_pool

BOX = (10.65, 10.90, 106.55, 106.85)  # lat min, lat max, lon min, lon max


async def timed(pool: asyncpg.Pool, points: list[tuple[float, float]], radius: float, readings: bool) -> list[float]:
    """Milliseconds per query (and the readings' two queries when ``readings``)."""
    out = []
    async with pool.acquire() as conn:
        for lat, lon in points:
            started = time.perf_counter()
            found = await nearby_devices(conn, lat, lon, radius_m=radius)
            if readings:
                await with_readings(conn, found)
            out.append((time.perf_counter() - started) * 1000)
    return out


async def run(url: str, devices: int, queries: int, radius: float, seed: int) -> None:
    """Load the devices, then time the queries."""
    rng = random.Random(seed)
    pool = await create_pool(url, max_size=2)
    try:
        rows = [
            (
                f"BENCH-NEAR-{i:05d}",
                ("camera", "flood", "traffic")[i % 3],
                rng.uniform(BOX[0], BOX[1]),
                rng.uniform(BOX[2], BOX[3]),
            )
            for i in range(devices)
        ]
        await pool.executemany(
            "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, $2, $1, $3, $4)", rows
        )
        await pool.execute("ANALYZE devices")
        total = await pool.fetchval("SELECT count(*) FROM devices WHERE lat IS NOT NULL")
        points = [(rng.uniform(BOX[0], BOX[1]), rng.uniform(BOX[2], BOX[3])) for _ in range(queries)]
        async with pool.acquire() as conn:
            found = [len(await nearby_devices(conn, lat, lon, radius_m=radius)) for lat, lon in points[:200]]
            plan = await conn.fetch(
                f"EXPLAIN {NEARBY}",
                *(10.77, 106.70, radius, ["camera", "flood", "traffic"], 10.7655, 10.7745, 106.6954, 106.7046, 20),
            )
        progress(f"{total} located devices; {sum(found) / len(found):.1f} found per query on average")
        print("plan:\n  " + "\n  ".join(r[0] for r in plan))
        await timed(pool, points[:100], radius, False)  # warm the cache and the prepared statement
        for label, readings in (("query", False), ("query + readings", True)):
            ms = await timed(pool, points, radius, readings)
            print(
                f"{label:>18}: p50 {pct(ms, 50):.2f} ms  p95 {pct(ms, 95):.2f} ms  p99 {pct(ms, 99):.2f} ms  "
                f"max {max(ms):.2f} ms  ({len(ms)} queries, {radius:g} m, {total} devices)"
            )
        await pool.execute("ALTER DATABASE ioc SET enable_indexscan = off")
        await pool.execute("ALTER DATABASE ioc SET enable_bitmapscan = off")
        await pool.expire_connections()
        ms = await timed(pool, points, radius, False)
        print(
            f"{'no index (seq scan)':>18}: p50 {pct(ms, 50):.2f} ms  p95 {pct(ms, 95):.2f} ms  p99 {pct(ms, 99):.2f} ms"
        )
    finally:
        await pool.close()


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--radius", type=float, default=500.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    stack = private_stack("nearby", fast_db=True)
    try:
        asyncio.run(run(stack.database_url, args.devices, args.queries, args.radius, args.seed))
    finally:
        stack.stop()
        remove_linked_clusters(stack.state_dir)
        shutil.rmtree(stack.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

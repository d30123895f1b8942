"""History bench (issue 18, bar 5): the history API's queries over months of the demo city (50 M raw rows).

``make bench-history`` (or ``.venv/bin/python benchmarks/bench_history.py [--rows 50000000] [--runs 3]``)
starts a PostgreSQL+TimescaleDB of its own as ``ioc up`` does (fsync on), imports the demo fleet and fills
as many days of simulated history as make ``--rows`` raw readings, through the first ``ioc up``'s own bulk
path (simulators.backfill: binary COPY of rows and their 1-minute rollups), then VACUUM ANALYZE as
autovacuum would. It then times, through the readings API's own dependency (dashboards.api.devices.history:
the device check and dashboards.readings) on a pool the size of the server's:

- one device's last 24 h at 1-minute buckets (flood and traffic devices in turn, windows ending over the
  last 30 days);
- one device's last 30 days at 1-hour buckets;
- a whole zone's last 24 h as the zone page draws it (dashboards/static/js/zone.js: every flood device's
  water level and every traffic device's speed at the default bucket, 1 minute, all requests at once), for
  the zone with the most such devices.

Each of ``--runs`` rounds prints the median and p95 of each query with the load average, and its CPU time per
request (this process and the pool's database backends: what a quiet machine's latency cannot go below, and
what a busy one inflates least); then the medians of the rounds. Last, the storage: each table's and index's
bytes, per million raw rows. ``--keep DIR`` keeps the stack's state in DIR (and reuses a history already loaded
there) instead of deleting it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from dashboards import queries
from dashboards.api.devices import history
from ioc.cluster import remove_linked_clusters
from ioc.db import create_pool
from ioc.fleet import load_fleet
from ioc.processes import free_port
from ioc.settings import Settings
from ioc.up import Stack
from simulators.backfill import SPAN_S, plan, run, simulate

POOL_SIZE = 16  # the server's (dashboards/app.py)
ZONE_CHARTS = (("flood", "water_level_cm"), ("traffic", "avg_speed_kmh"))  # zone.js drawHistory
TABLES = ("measurements", "rollups_1m")


def quantiles(times: list[float]) -> tuple[float, float]:
    """Median and p95 in milliseconds."""
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] * 1000


def load(stack: Stack, rows: int) -> None:
    """Fill the history before now with about ``rows`` raw readings, unless the database holds some already."""
    fleet = load_fleet(stack.settings.fleet_file)
    probe = plan(stack.settings, stack.database_url, fleet, 1)
    if len(probe) < 4:
        print("history already loaded", flush=True)
        return
    per_span = simulate(probe[1])[0].rows  # a whole 6-hour span
    days = math.ceil(rows / per_span) * SPAN_S / 86400
    print(f"loading {days:g} days of history ({per_span:,} readings per 6 h), load average {os.getloadavg()[0]:.1f}")
    started = time.monotonic()
    result = run(plan(stack.settings, stack.database_url, fleet, days))
    took = time.monotonic() - started
    print(f"loaded {result.rows:,} readings, {result.events:,} events in {took:.0f} s", flush=True)
    stack.postgres.psql("VACUUM ANALYZE measurements; VACUUM ANALYZE rollups_1m")  # type: ignore[union-attr]


async def _one(pool: asyncpg.Pool, device_id: str, metric: str, start: datetime, end: datetime, bucket: str) -> int:
    async with pool.acquire() as conn:
        _, points = await history(device_id, conn, True, metric, "", start, end, bucket)
    return len(points)


async def _timed(n: int, request: Callable[[int], Awaitable[Any]]) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        await request(i)
        times.append(time.perf_counter() - started)
    return times


def process_cpu(pid: int) -> float:
    """CPU seconds of a local process so far (a database backend serving the pool)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backends(pool: asyncpg.Pool) -> list[int]:
    """The process ids of the pool's database backends (all its connections held at once)."""
    held = [await pool.acquire() for _ in range(POOL_SIZE)]
    try:
        return [await conn.fetchval("SELECT pg_backend_pid()") for conn in held]
    finally:
        for conn in held:
            await pool.release(conn)


async def measure(url: str, runs: int, requests: int) -> None:
    """Time the three history queries ``runs`` times and print medians and p95."""
    pool = await create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, max_inactive_connection_lifetime=0)
    try:
        backends = await _backends(pool)

        def cpu() -> float:
            return time.process_time() + sum(process_cpu(pid) for pid in backends)

        async with pool.acquire() as conn:
            devices = await queries.load_devices(conn)
            end = await conn.fetchval("SELECT max(time) FROM measurements")
        singles = [(d["device_id"], m) for d in devices for kind, m in ZONE_CHARTS if d["kind"] == kind]
        zones: dict[str, list[tuple[str, str]]] = {}
        for d in devices:
            for kind, metric in ZONE_CHARTS:
                if d["kind"] == kind:
                    zones.setdefault(d["zone"], []).append((d["device_id"], metric))
        zone, members = max(zones.items(), key=lambda z: len(z[1]))
        day = timedelta(days=1)

        def last_24h(i: int) -> Awaitable[int]:
            device_id, metric = singles[i % len(singles)]
            to = end - timedelta(hours=(i * 7) % (30 * 24))
            return _one(pool, device_id, metric, to - day, to, "1m")

        def last_30d(i: int) -> Awaitable[int]:
            device_id, metric = singles[i % len(singles)]
            return _one(pool, device_id, metric, end - 30 * day, end, "1h")

        async def zone_24h(i: int) -> list[int]:
            to = end - timedelta(hours=(i * 7) % (30 * 24))
            return await asyncio.gather(*(_one(pool, d, m, to - day, to, "1m") for d, m in members))

        cases: list[tuple[str, Callable[[int], Awaitable[Any]], int]] = [
            ("one device, 24 h at 1 min", last_24h, requests),
            ("one device, 30 days at 1 h", last_30d, requests),
            (f"zone {zone} ({len(members)} devices), 24 h at 1 min", zone_24h, max(20, requests // 4)),
        ]
        points = [await last_24h(0), await last_30d(0), sum(await zone_24h(0))]
        answers = ", ".join(f"{name}: {p:,}" for (name, _, _), p in zip(cases, points, strict=True))
        print(f"points per answer: {answers}")
        rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in cases}
        for r in range(runs):
            for name, request, n in cases:
                await _timed(3, request)  # warm the plan cache of the pool's connections a little
                used = cpu()
                med, p95 = quantiles(await _timed(n, request))
                used = (cpu() - used) / n * 1000
                rounds[name].append((med, p95, used))
                print(
                    f"run {r + 1}: {name}: median {med:.1f} ms, p95 {p95:.1f} ms, CPU {used:.1f} ms ({n} requests, "
                    f"load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        for name, figures in rounds.items():
            print(
                f"median of {runs} runs: {name}: median {statistics.median(f[0] for f in figures):.1f} ms, "
                f"p95 {statistics.median(f[1] for f in figures):.1f} ms, "
                f"CPU {statistics.median(f[2] for f in figures):.1f} ms (this process and the database)"
            )
        async with pool.acquire() as conn:
            await storage(conn)
    finally:
        await pool.close()


async def storage(conn: asyncpg.Connection) -> None:
    """Each table's heap and index bytes, in all and per million raw rows."""
    raw = await conn.fetchval("SELECT count(*) FROM measurements")
    version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    license = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    print(
        f"storage for {raw:,} raw readings (TimescaleDB {version}, compression "
        f"{'absent: an Apache build' if license == 'apache' else 'available'}):"
    )
    total = 0
    for table in TABLES:
        rows = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - a fixed name
        size = await conn.fetchrow("SELECT * FROM hypertable_detailed_size($1)", table)
        total += size["total_bytes"]
        print(
            f"  {table}: {rows:,} rows, {size['total_bytes'] / 1e9:.2f} GB "
            f"({size['total_bytes'] / rows:.0f} B a row): heap {size['table_bytes'] / 1e9:.2f} GB, "
            f"indexes {size['index_bytes'] / 1e9:.2f} GB; {size['total_bytes'] / raw:.0f} MB "
            "per million raw readings"
        )
        for index in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname", table
        ):
            bytes_ = await conn.fetchval("SELECT hypertable_index_size($1)", index["indexname"])
            print(f"    index {index['indexname']}: {bytes_ / 1e9:.2f} GB, {bytes_ / raw:.0f} B per raw reading")
    print(f"  together: {total / raw:.0f} MB per million raw readings (bytes per raw reading)")


def main() -> None:
    """Load the history (once), time the queries and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="per query and run (a quarter for the zone)")
    parser.add_argument("--keep", type=Path, help="state folder to keep (and reuse a history loaded there)")
    args = parser.parse_args()
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-history-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # the postgres user reaches its cluster inside
    port_file = work / "ports"
    db_port, mqtt_port = map(int, port_file.read_text().split()) if port_file.exists() else (free_port(), free_port())
    port_file.write_text(f"{db_port} {mqtt_port}")
    settings = Settings(state_dir=work / "state", db_port=db_port, mqtt_port=mqtt_port, http_port=free_port())
    stack = Stack(settings)
    try:
        stack.prepare_state(reset=False)
        stack.start_services()
        stack.load_data(settings.fleet_file)
        load(stack, args.rows)
        asyncio.run(measure(stack.database_url, args.runs, args.requests))
    finally:
        stack.stop()
        if not args.keep:
            remove_linked_clusters(work)  # as root the cluster lives under /var/lib/ioc (ioc.cluster)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

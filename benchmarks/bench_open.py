"""Open data latency: the public SensorThings API's three bar queries on 10 M stored observations.

  1. the latest observation of every Datastream (500 Datastreams) in one request
  2. one Datastream's last 24 h of observations (1,440 at one a minute)
  3. one hourly-mean Datastream over a week (168 hours from the 1-minute rollups)

Each is asked ``--requests`` times (rotating over devices), printing the median and p95 in ms and the server
process's CPU time per request. Run: make bench-open
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import discard_stack  # noqa: E402

from ioc.db import create_pool
from ioc.processes import free_port
from ioc.settings import Settings
from ioc.up import Stack, wait_http
from opendata.config import DEFAULT_FILE


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(values: list[float]) -> str:
    """Median and p95 in ms."""
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {pct(values, 0.95) * 1000:.1f} ms"


async def generate(pool: asyncpg.Pool, devices: int, rows: int) -> datetime:
    """``devices`` flood devices, 2 public metrics each, one reading a minute up to now: ``rows`` readings in all,
    with their 1-minute rollups and latest values. Returns the newest reading's time."""
    per_stream = rows // (devices * 2)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=per_stream - 1)
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, 'flood', $1, 10.7 + $2 / 10000.0, 106.6) "
        "ON CONFLICT DO NOTHING",
        [(f"OPEN-{i:03d}", i) for i in range(devices)],
    )
    started = time.monotonic()

    async def one(i: int) -> None:
        device = f"OPEN-{i:03d}"
        async with pool.acquire() as conn:
            for metric in ("water_level_cm", "rainfall_mm_h"):
                await conn.execute(
                    "INSERT INTO measurements (time, device_id, metric, part, value) "
                    "SELECT t, $1, $2, '', 10 + 5 * sin(extract(epoch FROM t) / 3600) "
                    "FROM generate_series($3::timestamptz, $4::timestamptz, interval '1 minute') t",
                    device,
                    metric,
                    start,
                    end,
                )
            await conn.execute(
                "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
                "SELECT time, device_id, metric, part, 1, value, value, value FROM measurements WHERE device_id = $1",
                device,
            )
            await conn.execute(
                "INSERT INTO latest_values (device_id, metric, part, time, value) "
                "SELECT DISTINCT ON (metric) device_id, metric, part, time, value FROM measurements "
                "WHERE device_id = $1 ORDER BY metric, time DESC",
                device,
            )

    sem = asyncio.Semaphore(2)

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(limited(i) for i in range(devices)))
    await pool.execute("ANALYZE measurements; ANALYZE rollups_1m; ANALYZE latest_values; ANALYZE devices")
    total = await pool.fetchval("SELECT count(*) FROM measurements")
    print(f"generated {total:,} observations (+ rollups) over {devices * 2} raw Datastreams "
          f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    return end


def measure(http: httpx.Client, label: str, paths: list[str], requests: int, server: psutil.Process) -> None:
    """Ask ``paths`` in turn ``requests`` times; print the figures, with the server process's CPU per request
    (a figure the other processes of a shared machine do not inflate as they do wall time)."""
    times: list[float] = []
    size = 0
    cpu = server.cpu_times()
    for i in range(requests):
        t0 = time.perf_counter()
        resp = http.get(paths[i % len(paths)])
        times.append(time.perf_counter() - t0)
        resp.raise_for_status()
        size = len(resp.content)
    used = server.cpu_times()
    per_request = (used.user + used.system - cpu.user - cpu.system) / requests * 1000
    print(f"  {label}: {figures(times)}; server CPU {per_request:.1f} ms/request ({requests} requests, {size:,} bytes)")


async def main(args: argparse.Namespace) -> None:
    """Build a private stack, fill it, start ``ioc serve``, measure."""
    root = Path(tempfile.mkdtemp(prefix="ioc-bench-open-"))
    os.chmod(root, 0o755)
    settings = Settings(
        state_dir=root, db_port=free_port(), mqtt_port=free_port(), http_port=free_port(), environment="test"
    )
    stack = Stack(settings, fast_db=True)
    stack.prepare_state(reset=False)
    await asyncio.to_thread(stack.start_services)
    try:
        await asyncio.to_thread(stack.load_data, None)
        pool = await create_pool(stack.database_url, max_size=4)
        end = await generate(pool, args.devices, args.rows)
        await pool.close()
        # 250 devices x (2 raw + 2 hourly-mean) Datastreams = 1,000; the bar's 500 are the raw ones.
        policy = yaml.safe_load(DEFAULT_FILE.read_text())
        policy["kinds"]["flood"]["hourly"] = ["mean"]
        (root / "open-data.yaml").write_text(yaml.safe_dump(policy))
        # The server's jobs are off: the bulk files' first run would read all 10 M rows beside the measurement,
        # and the forecast rounds would add their CPU to the server's per-request figure.
        os.environ.update(
            {"IOC_OPEN_DATA_FILE": str(root / "open-data.yaml"), "IOC_OPEN_RATE_PER_MINUTE": "1000000",
             "IOC_OPEN_RATE_BURST": "1000000", "IOC_OPEN_BULK_JOB": "false", "IOC_FORECAST_ENABLED": "false"}
        )  # fmt: skip
        serve = stack.start_app("serve", ["serve"])
        base = f"http://127.0.0.1:{settings.http_port}"
        wait_http(f"{base}/api/v1/health", 60, serve)
        sta = f"{base}/sta/v1.1"
        server = psutil.Process(serve.proc.pid)
        day = (end - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
        week = (end - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        devices = [f"OPEN-{i:03d}" for i in range(args.devices)]
        with httpx.Client(base_url=sta, timeout=60) as http:
            raw = http.get("/Datastreams", params={"$filter": "properties/resolution eq 'raw'", "$count": "true"})
            print(f"serving {raw.json()['@iot.count']} raw Datastreams at {sta}")
            latest = (
                "/Datastreams?$top=1000&$filter=properties/resolution eq 'raw'"
                "&$select=id,name,unitOfMeasurement,Observations"
                "&$expand=Observations($top=1;$orderby=phenomenonTime desc;$select=phenomenonTime,result)"
            )
            measure(http, "1. latest observation of every raw Datastream", [latest], args.requests, server)
            paths = [
                f"/Datastreams('{d}:water_level_cm')/Observations?$top=2000&$orderby=phenomenonTime"
                f"&$filter=phenomenonTime gt {day}&$select=phenomenonTime,result"
                for d in devices
            ]
            measure(http, "2. one Datastream, 24 h (1,440 observations)", paths, args.requests, server)
            arrays = [p + "&$resultFormat=dataArray" for p in paths]
            measure(http, "2b. the same as dataArray", arrays, args.requests, server)
            hourly = [
                f"/Datastreams('{d}:water_level_cm.hourly_mean')/Observations?$top=200&$orderby=phenomenonTime"
                f"&$filter=phenomenonTime ge {week}&$select=phenomenonTime,result"
                for d in devices
            ]
            measure(http, "3. hourly means over a week (168)", hourly, args.requests, server)
    finally:
        discard_stack(stack, root)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000, help="observations stored")
    p.add_argument("--devices", type=int, default=250, help="flood devices (2 raw Datastreams each)")
    p.add_argument("--requests", type=int, default=100, help="requests per query")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))

"""Open data fixtures: the STA suite's precondition data (1 Thing, 1 Location, 2 Datastreams, 4 Observations)
plus a traffic detector, a camera and a withheld device, and an ``ioc serve`` with a test policy file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml

from ioc.processes import free_port
from ioc.up import wait_http
from opendata.config import DEFAULT_FILE

THING = "T-OD-1"  # flood sensor: the suite's one Thing (its Location, 2 Datastreams, 4 Observations)
TRAFFIC = "T-OD-2"
CAMERA = "T-OD-CAM"
SECRET = "T-OD-SECRET"  # withheld by the test policy
SECRET_VALUE = 999.25
# A withheld metric's value, distinctive enough that no public reading of the shared test database prints it.
WITHHELD_VALUE = 77.0317
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
OURS = "startswith(id, 'T-OD-')"


def policy_file(folder: Path) -> Path:
    """The shipped policy with SECRET withheld, and flood without hourly aggregates (the precondition Thing has
    exactly two Datastreams)."""
    doc = yaml.safe_load(DEFAULT_FILE.read_text())
    doc["withheld_devices"] = [SECRET]
    doc["kinds"]["flood"]["hourly"] = []
    path = folder / "open-data.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def load(pool: asyncpg.Pool) -> None:
    """Devices and readings of the open data tests (idempotent)."""
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, vendor, zone, lat, lon, status) "
        "VALUES ($1, $2, $3, $4, NULL, $5, $6, 'online') ON CONFLICT (device_id) DO UPDATE SET "
        "kind = EXCLUDED.kind, name = EXCLUDED.name, vendor = EXCLUDED.vendor, lat = EXCLUDED.lat, "
        "lon = EXCLUDED.lon, enabled = true",
        [
            (THING, "flood", "Ben Thanh flood sensor", "acme", 10.772345, 106.698123),
            (TRAFFIC, "traffic", "Dien Bien Phu detector", "trafficx", 10.80, 106.65),
            (CAMERA, "camera", "Nguyen Hue camera", "camx", 10.774999, 106.703444),
            (SECRET, "flood", "Secret sensor", "acme", 10.5, 106.5),
        ],
    )
    rows = [
        (T0, THING, "water_level_cm", 10.0),
        (T0 + timedelta(minutes=1), THING, "water_level_cm", 12.5),
        (T0, THING, "rainfall_mm_h", 0.0),
        (T0 + timedelta(minutes=1), THING, "rainfall_mm_h", 3.0),
        (T0, THING, "battery_pct", WITHHELD_VALUE),  # not a public metric
        (T0, TRAFFIC, "vehicle_count", 40.0),
        (T0 + timedelta(minutes=1), TRAFFIC, "vehicle_count", 55.0),
        (T0, TRAFFIC, "avg_speed_kmh", 30.5),
        (T0, SECRET, "water_level_cm", SECRET_VALUE),
        (T0 + timedelta(minutes=1), SECRET, "rainfall_mm_h", SECRET_VALUE),
    ]
    # The camera counts people every minute for two complete hours: published only as hourly means.
    camera = [(T0 + timedelta(minutes=m), CAMERA, "people_count", float(m % 7) + 0.125) for m in range(120)]
    await pool.executemany(
        "INSERT INTO measurements (time, device_id, metric, part, value) VALUES ($1, $2, $3, '', $4) "
        "ON CONFLICT DO NOTHING",
        rows + camera,
    )
    await pool.executemany(
        "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
        "VALUES ($1, $2, $3, '', 1, $4, $4, $4) ON CONFLICT DO NOTHING",
        [*camera, *rows[5:7], (T0, SECRET, "water_level_cm", SECRET_VALUE)],
    )
    # The ingest keeps each stream's newest reading in latest_values.
    newest = {(device, metric): (time, value) for time, device, metric, value in sorted(rows + camera)}
    await pool.executemany(
        "INSERT INTO latest_values (device_id, metric, part, time, value) VALUES ($1, $2, '', $3, $4) "
        "ON CONFLICT (device_id, metric, part) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value",
        [(device, metric, time, value) for (device, metric), (time, value) in newest.items()],
    )
    await pool.execute(
        "INSERT INTO events (time, device_id, type, severity, confidence, attrs) "
        "VALUES ($1, $2, 'person.loitering', 'high', 0.9, '{\"plate\": \"51F-PRIVATE\"}') ON CONFLICT DO NOTHING",
        T0,
        CAMERA,
    )


def camera_means() -> list[float]:
    """The hourly means the camera's two hours must be published as."""
    return [sum(float(m % 7) + 0.125 for m in range(h * 60, h * 60 + 60)) / 60 for h in (0, 1)]


def start_server(run_ioc, folder: Path, **env: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An ``ioc serve`` with the test policy (and ``env``; its bulk files in ``folder``/bulk, without the bulk job,
    unless ``env`` says otherwise); yields its base URL."""
    port = free_port()
    env = {"IOC_OPEN_DATA_FILE": str(policy_file(folder)), "IOC_OPEN_BULK_DIR": str(folder / "bulk"),
           "IOC_OPEN_BULK_JOB": "false", **env}  # fmt: skip
    child = run_ioc("serve-open", "serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/v1/health", 30, child)
    yield base
    child.stop()


@pytest.fixture(scope="module", name="open_data")
async def open_data_fixture(pool: asyncpg.Pool) -> None:
    """The open data tests' rows."""
    await load(pool)


@pytest.fixture(scope="module", name="sta")
def sta_fixture(run_ioc, module_scratch_dir, open_data) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The service root URL of a module-wide server (its rate limit out of the way)."""
    folder = module_scratch_dir("ioc-od-")
    for base in start_server(run_ioc, folder, IOC_OPEN_RATE_PER_MINUTE="1000000", IOC_OPEN_RATE_BURST="100000"):
        yield base + "/sta/v1.1"


def bulk_days() -> tuple[date, int]:
    """``--today`` and ``--days`` of an ``ioc opendata bulk`` whose files hold every fixture reading (T0 and the
    camera's two hours, which may straddle a UTC midnight)."""
    last = (T0 + timedelta(hours=2)).date()
    return last + timedelta(days=1), (last - T0.date()).days + 1


def build_bulk(app_env: dict[str, str], folder: Path, policy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ioc opendata bulk`` into ``folder`` with ``policy`` (as the read-only role) and return its outcome."""
    today, days = bulk_days()
    return subprocess.run(
        [sys.executable, "-m", "ioc.cli", "opendata", "bulk", "--dir", str(folder), "--today", today.isoformat(),
         "--days", str(days), *args],
        env={**app_env, "IOC_OPEN_DATA_FILE": str(policy)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

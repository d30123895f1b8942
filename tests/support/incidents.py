"""The incident tests' own place: a zone and devices ~35 km from the demo fleet, so nothing else is near them."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.support.stack import Broker, mosquitto_pub

LAT, LON = 10.95, 106.95
M_LAT = 1 / 111_195.0  # degrees of latitude per metre
ZONE = "t_inc"
FLOOD_A, FLOOD_B, FLOOD_FAR = "T-INC-FL-A", "T-INC-FL-B", "T-INC-FL-FAR"
CAM_NEAR, CAM_FAR, TRAFFIC = "T-INC-CAM-1", "T-INC-CAM-2", "T-INC-TR-1"


@pytest.fixture(scope="module")
async def places(pool: asyncpg.Pool) -> dict[str, tuple[float, float]]:
    """Our zone and devices: flood A, flood B 150 m north of A, one 2 km north; cameras and a detector around A."""
    where = {
        FLOOD_A: (LAT, LON),
        FLOOD_B: (LAT + 150 * M_LAT, LON),
        FLOOD_FAR: (LAT + 2000 * M_LAT, LON),
        CAM_NEAR: (LAT, LON + 100 * M_LAT / 0.98),  # ~100 m east
        TRAFFIC: (LAT - 300 * M_LAT, LON),  # 300 m south
        CAM_FAR: (LAT - 700 * M_LAT, LON),  # outside 500 m
    }
    kinds = {FLOOD_A: "flood", FLOOD_B: "flood", FLOOD_FAR: "flood", CAM_NEAR: "camera", CAM_FAR: "camera"}
    meta = {"t_inc_warning_cm": 20, "t_inc_danger_cm": 30}
    await pool.execute(
        "INSERT INTO zones (zone_id, name, lat, lon) VALUES ($1, 'Test incidents', $2, $3) ON CONFLICT DO NOTHING",
        ZONE,
        LAT,
        LON,
    )
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone, lat, lon, metadata) VALUES ($1, $2, $1, $3, $4, $5, $6) "
        "ON CONFLICT (device_id) DO UPDATE SET lat = EXCLUDED.lat, lon = EXCLUDED.lon, metadata = EXCLUDED.metadata",
        [
            (d, kinds.get(d, "traffic"), ZONE, lat, lon, meta if kinds.get(d) == "flood" else {})
            for d, (lat, lon) in where.items()
        ],
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")
    return where


async def publish_level(pool: asyncpg.Pool, broker: Broker, device_id: str, level: float) -> None:
    """A water level reading now, sent again each second (as a device does) until the ingest has stored it:
    the ingest learns of our new devices asynchronously."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        sent = datetime.now(UTC)
        payload = {"ts": sent.isoformat(), "metrics": {"water_level_cm": level}}
        mosquitto_pub(broker, f"ioc/v1/flood/{device_id}/telemetry", json.dumps(payload).encode())
        for _ in range(10):
            stored = await pool.fetchval(
                "SELECT value FROM latest_values WHERE device_id = $1 AND metric = 'water_level_cm' AND time >= $2",
                device_id,
                sent.replace(microsecond=(sent.microsecond // 1000) * 1000),
            )
            if stored == level:
                return
            await asyncio.sleep(0.1)
    pytest.fail(f"the reading of {device_id} was not stored within 15 s")

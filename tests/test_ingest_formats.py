"""Every payload format through the real broker and ingest into the real database, with exact values."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.support.stack import Broker, mosquitto_pub, register_devices, wait_rows

pytestmark = pytest.mark.usefixtures("ingest")

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def values(pool: asyncpg.Pool, device_id: str, count: int) -> dict[tuple[str, str], float]:
    rows = await wait_rows(
        pool, "SELECT metric, part, value FROM measurements WHERE device_id = $1", device_id, count=count
    )
    return {(r["metric"], r["part"]): r["value"] for r in rows}


async def test_canonical_json(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-CAN-1", "flood", "canonical"))
    payload = {"ts": iso(NOW), "seq": 7, "metrics": {"water_level_cm": 23.5, "rainfall_mm_h": 41.0, "battery_pct": 87}}
    mosquitto_pub(broker, "ioc/v1/flood/T-CAN-1/telemetry", json.dumps(payload).encode())
    got = await values(pool, "T-CAN-1", 3)
    assert got == {("water_level_cm", ""): 23.5, ("rainfall_mm_h", ""): 41.0, ("battery_pct", ""): 87.0}
    row = await pool.fetchrow("SELECT time, seq FROM measurements WHERE device_id = 'T-CAN-1' LIMIT 1")
    assert row["time"] == NOW and row["seq"] == 7
    latest = await pool.fetchval(
        "SELECT value FROM latest_values WHERE device_id = 'T-CAN-1' AND metric = 'water_level_cm'"
    )
    assert latest == 23.5
    dev = await pool.fetchrow("SELECT status, last_seen FROM devices WHERE device_id = 'T-CAN-1'")
    assert dev["status"] == "online" and dev["last_seen"] is not None


async def test_senml_units_are_converted(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-SML-1", "flood", "senml"))
    pack = [
        {"bn": "urn:dev:ioc:T-SML-1:", "bt": NOW.timestamp(), "n": "water_level", "u": "m", "v": 0.315},
        {"n": "rainfall", "u": "mm/h", "v": 12.5},
        {"n": "battery", "u": "%", "v": 64},
    ]
    mosquitto_pub(broker, "ioc/v1/flood/T-SML-1/telemetry", json.dumps(pack).encode())
    got = await values(pool, "T-SML-1", 3)
    assert got[("water_level_cm", "")] == pytest.approx(31.5)
    assert got[("rainfall_mm_h", "")] == 12.5 and got[("battery_pct", "")] == 64.0


async def test_legacy_flood_csv(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-LEG-1", "flood", "legacy_flood"))
    line = f"T-LEG-1,{int(NOW.timestamp())},125,2.5,3.75"
    mosquitto_pub(broker, "legacy/flood/T-LEG-1", line.encode())
    got = await values(pool, "T-LEG-1", 3)
    assert got[("water_level_cm", "")] == pytest.approx(12.5)
    assert got[("rainfall_mm_h", "")] == pytest.approx(30.0)
    assert got[("battery_pct", "")] == pytest.approx(50.0)


async def test_trafficx_totals_weighted_speed_and_lanes(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-TRX-1", "traffic", "trafficx"))
    local = NOW.astimezone(datetime.now().astimezone().tzinfo).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")
    )
    doc = {
        "ctrl": "T-TRX-1",
        "time": local.isoformat(),
        "period": 60,
        "lanes": [
            {"lane": 1, "count": 30, "speed": 20.0, "occ": 0.2},
            {"lane": 2, "count": 10, "speed": 40.0, "occ": 0.4},
        ],
    }
    mosquitto_pub(broker, "vendor/trafficx/T-TRX-1", json.dumps(doc).encode())
    got = await values(pool, "T-TRX-1", 10)
    assert got[("vehicle_count", "")] == 40
    assert got[("interval_s", "")] == 60
    assert got[("avg_speed_kmh", "")] == pytest.approx(25.0)  # (30*20 + 10*40) / 40
    assert got[("occupancy_pct", "")] == pytest.approx(30.0)
    assert got[("vehicle_count", "lane:2")] == 10 and got[("avg_speed_kmh", "lane:1")] == 20.0
    assert got[("occupancy_pct", "lane:2")] == pytest.approx(40.0)
    stored_time = await pool.fetchval("SELECT time FROM measurements WHERE device_id = 'T-TRX-1' LIMIT 1")
    assert stored_time == NOW  # local time with +07:00 stored as UTC


async def test_camx_event(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-CAMX-1", "camera", "camx"))
    doc = {"Source": "T-CAMX-1", "UtcTime": iso(NOW), "Rule": "Accident", "Confidence": 87, "Count": 3}
    mosquitto_pub(broker, "vendor/camx/T-CAMX-1/event", json.dumps(doc).encode())
    rows = await wait_rows(pool, "SELECT * FROM events WHERE device_id = 'T-CAMX-1'")
    ev = rows[0]
    assert (ev["type"], ev["severity"], ev["time"]) == ("traffic.accident", "high", NOW)
    assert ev["confidence"] == pytest.approx(0.87)
    assert ev["attrs"]["count"] == 3


@pytest.mark.parametrize("form", ["normalized", "keyValues"])
async def test_fiware_traffic_flow_observed(broker: Broker, pool: asyncpg.Pool, form: str) -> None:
    device = f"T-FIW-{form}"
    await register_devices(pool, (device, "traffic", "fiware"))
    attrs = {
        "dateObserved": iso(NOW),
        "dateObservedFrom": iso(NOW - timedelta(minutes=5)),
        "dateObservedTo": iso(NOW),
        "intensity": 120,
        "averageVehicleSpeed": 18.5,
        "occupancy": 0.42,
    }
    if form == "normalized":
        entity = {
            "id": f"urn:ngsi-ld:TrafficFlowObserved:{device}",
            "type": "TrafficFlowObserved",
            **{k: {"type": "Property", "value": v} for k, v in attrs.items()},
        }
    else:
        entity = {"id": f"urn:ngsi-ld:TrafficFlowObserved:{device}", "type": "TrafficFlowObserved", **attrs}
    mosquitto_pub(broker, f"fiware/TrafficFlowObserved/{device}", json.dumps(entity).encode())
    got = await values(pool, device, 4)
    assert got[("vehicle_count", "")] == 120 and got[("avg_speed_kmh", "")] == 18.5
    assert got[("occupancy_pct", "")] == pytest.approx(42.0) and got[("interval_s", "")] == 300


async def test_fiware_flood_monitoring_and_crowd(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-FIW-FM", "flood", "fiware"), ("T-FIW-CR", "camera", "fiware"))
    flood = {
        "id": "urn:ngsi-ld:FloodMonitoring:T-FIW-FM",
        "type": "FloodMonitoring",
        "currentLevel": 0.42,
        "observationDateTime": iso(NOW),
    }
    crowd = {
        "id": "urn:ngsi-ld:CrowdFlowObserved:T-FIW-CR",
        "type": "CrowdFlowObserved",
        "peopleCount": {"type": "Property", "value": 57},
        "dateObserved": {"type": "Property", "value": iso(NOW)},
    }
    mosquitto_pub(broker, "fiware/FloodMonitoring/T-FIW-FM", json.dumps(flood).encode())
    mosquitto_pub(broker, "fiware/CrowdFlowObserved/T-FIW-CR", json.dumps(crowd).encode())
    assert (await values(pool, "T-FIW-FM", 1))[("water_level_cm", "")] == pytest.approx(42.0)
    assert (await values(pool, "T-FIW-CR", 1))[("people_count", "")] == 57


async def test_status_snapshot_and_canonical_event(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-CAM-1", "camera", "canonical"))
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"
    mosquitto_pub(broker, "ioc/v1/camera/T-CAM-1/snapshot", jpeg)
    event = {"ts": iso(NOW), "type": "traffic.congestion", "severity": "low", "confidence": 0.7, "attrs": {"lanes": 2}}
    mosquitto_pub(broker, "ioc/v1/camera/T-CAM-1/event", json.dumps(event).encode())
    await wait_rows(pool, "SELECT 1 FROM snapshots WHERE device_id = 'T-CAM-1'")
    assert await pool.fetchval("SELECT data FROM snapshots WHERE device_id = 'T-CAM-1'") == jpeg
    rows = await wait_rows(pool, "SELECT type, attrs FROM events WHERE device_id = 'T-CAM-1'")
    assert rows[0]["type"] == "traffic.congestion" and rows[0]["attrs"] == {"lanes": 2}
    mosquitto_pub(broker, "ioc/v1/camera/T-CAM-1/status", b"offline", retain=True)
    await wait_rows(pool, "SELECT 1 FROM devices WHERE device_id = 'T-CAM-1' AND status = 'offline'")
    mosquitto_pub(broker, "ioc/v1/camera/T-CAM-1/status", b"online", retain=True)
    await wait_rows(pool, "SELECT 1 FROM devices WHERE device_id = 'T-CAM-1' AND status = 'online'")
    mosquitto_pub(broker, "ioc/v1/camera/T-CAM-1/status", b"", retain=True)  # leave no retained status behind


async def test_redelivered_message_is_stored_once(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-DUP-1", "flood", "canonical"))
    payload = json.dumps({"ts": iso(NOW), "seq": 1, "metrics": {"water_level_cm": 5.0}}).encode()
    for _ in range(3):
        mosquitto_pub(broker, "ioc/v1/flood/T-DUP-1/telemetry", payload)
    mosquitto_pub(
        broker,
        "ioc/v1/flood/T-DUP-1/telemetry",
        json.dumps({"ts": iso(NOW + timedelta(seconds=1)), "metrics": {"water_level_cm": 6.0}}).encode(),
    )
    await wait_rows(pool, "SELECT 1 FROM measurements WHERE device_id = 'T-DUP-1' AND value = 6.0")
    time.sleep(0.3)  # the thing under test is an absence (no third row): give stray duplicates a moment to land
    assert await pool.fetchval("SELECT count(*) FROM measurements WHERE device_id = 'T-DUP-1'") == 2


async def test_device_registered_a_moment_ago_is_accepted(broker: Broker, pool: asyncpg.Pool) -> None:
    """A device added to the database without telling the workers is looked up, not quarantined."""
    device = f"T-NEW-{int(time.time() * 1000) % 10**9}"
    await pool.execute("INSERT INTO devices (device_id, kind, name) VALUES ($1, 'flood', $1)", device)  # no NOTIFY
    payload = {"ts": iso(datetime.now(UTC)), "metrics": {"water_level_cm": 5.0}}
    mosquitto_pub(broker, f"ioc/v1/flood/{device}/telemetry", json.dumps(payload).encode())
    rows = await wait_rows(pool, "SELECT value FROM measurements WHERE device_id = $1", device)
    assert rows[0]["value"] == 5.0
    assert await pool.fetchval("SELECT count(*) FROM quarantine WHERE device_id = $1", device) == 0

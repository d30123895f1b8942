"""Air-quality payloads (Sensor.Community, FIWARE AirQualityObserved, SenML) through the real broker and ingest
into the real database, with exact stored values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.support.decoding import BOARD
from tests.support.stack import Broker, mosquitto_pub, register_devices, wait_rows
from tests.support.vendor_cases import SC_REPORT

pytestmark = pytest.mark.usefixtures("ingest")

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


async def register_board(pool: asyncpg.Pool, device_id: str, board: str) -> None:
    """A Sensor.Community device registered with its board id, in one statement before the workers reload."""
    await pool.execute(
        "INSERT INTO devices (device_id, kind, format, name, metadata) "
        "VALUES ($1, 'air', 'sensorcommunity', $1, jsonb_build_object('hardware_id', $2::text))",
        device_id,
        board,
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")


async def stored(pool: asyncpg.Pool, device_id: str, count: int) -> dict[str, tuple[datetime, float]]:
    rows = await wait_rows(
        pool, "SELECT time, metric, value FROM measurements WHERE device_id = $1 AND part = ''", device_id, count=count
    )
    return {r["metric"]: (r["time"], r["value"]) for r in rows}


async def test_sensor_community_report_is_stored_at_receipt(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_board(pool, "T-SC-1", BOARD)
    before = datetime.now(UTC)
    mosquitto_pub(broker, "vendor/sensorcommunity/T-SC-1", json.dumps(SC_REPORT).encode())  # 4 readings
    got = await stored(pool, "T-SC-1", 4)
    assert {m: v for m, (_, v) in got.items()} == {
        "pm10_ugm3": 12.8,
        "pm25_ugm3": 7.3,
        "temperature_c": 31.2,
        "humidity_pct": 78.1,
    }
    times = {t for t, _ in got.values()}
    assert len(times) == 1 and before - timedelta(seconds=1) <= times.pop() <= datetime.now(UTC)


async def test_sensor_community_report_from_another_board_is_quarantined(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_board(pool, "T-SC-2", "777")
    report = {"esp8266id": BOARD, "sensordatavalues": [{"value_type": "SDS_P2", "value": "7.30"}]}
    mosquitto_pub(broker, "vendor/sensorcommunity/T-SC-2", json.dumps(report).encode())
    rows = await wait_rows(pool, "SELECT reason, detail FROM quarantine WHERE device_id = 'T-SC-2'")
    assert rows[0]["reason"] == "device_mismatch" and BOARD in rows[0]["detail"]
    assert await pool.fetchval("SELECT count(*) FROM measurements WHERE device_id = 'T-SC-2'") == 0


@pytest.mark.parametrize("form", ["ngsi-v2-normalized", "keyValues"])
async def test_fiware_air_quality_observed(broker: Broker, pool: asyncpg.Pool, form: str) -> None:
    device = f"T-AQO-{form}"
    await register_devices(pool, (device, "air", "fiware"))
    attrs = {"pm25": 38.5, "pm10": 61, "no2": 42.3, "o3": 55, "so2": 8.4, "temperature": 31.5, "relativeHumidity": 0.72}
    entity: dict[str, object] = {"id": f"urn:ngsi-ld:AirQualityObserved:{device}", "type": "AirQualityObserved"}
    if form == "keyValues":
        entity |= {**attrs, "co": 900, "dateObserved": NOW.isoformat()}
    else:
        entity |= {k: {"type": "Number", "value": v} for k, v in attrs.items()}
        entity["co"] = {"type": "Number", "value": 0.9, "metadata": {"unitCode": {"value": "GP"}}}
        entity["dateObserved"] = {"type": "DateTime", "value": NOW.isoformat()}
    mosquitto_pub(broker, f"fiware/AirQualityObserved/{device}", json.dumps(entity).encode())
    got = await stored(pool, device, 8)
    assert {t for t, _ in got.values()} == {NOW}
    assert {m: v for m, (_, v) in got.items()} == {
        "pm25_ugm3": 38.5,
        "pm10_ugm3": 61.0,
        "no2_ugm3": 42.3,
        "o3_ugm3": 55.0,
        "co_ugm3": 900.0,
        "so2_ugm3": 8.4,
        "temperature_c": 31.5,
        "humidity_pct": 72.0,
    }


async def test_senml_air_units(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-SML-AQ", "air", "senml"))
    pack = [
        {"bn": "urn:dev:ioc:T-SML-AQ:", "bt": NOW.timestamp(), "n": "pm25", "u": "ug/m3", "v": 35.2},
        {"n": "co", "u": "mg/m3", "v": 0.85},
        {"n": "temperature", "u": "Cel", "v": 30.5},
        {"n": "humidity", "u": "%RH", "v": 81},
    ]
    mosquitto_pub(broker, "ioc/v1/air/T-SML-AQ/telemetry", json.dumps(pack).encode())
    got = await stored(pool, "T-SML-AQ", 4)
    assert {m: v for m, (_, v) in got.items()} == {
        "pm25_ugm3": 35.2,
        "co_ugm3": 850.0,
        "temperature_c": 30.5,
        "humidity_pct": 81.0,
    }
    assert {t for t, _ in got.values()} == {NOW}

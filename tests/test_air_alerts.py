"""Air-quality alerts with the real database and the real alert engine: a zone's unhealthy air sustained opens
one zone alert and clears; a sensor that disagrees with its neighbours is a suspect sensor, never pollution."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from dashboards.alerts.engine import AlertEngine
from dashboards.alerts.rules import parse
from ioc import aqi
from ioc.settings import REPO_ROOT, Settings
from tests.support.air import Sensor, remove_air, seed_air, write_hours

pytestmark = pytest.mark.asyncio(loop_scope="session")

RULES = """
version: 1
rules:
  - id: t_air_unhealthy
    type: air_quality
    title: "Unhealthy air: {name}"
    warning: 151
    critical: 201
    hysteresis: 10
    for_s: 1
    clear_delay_s: 0
  - id: t_air_suspect
    type: air_suspect
    title: "Suspect sensor: {name}"
    for_s: 0
    clear_delay_s: 0
"""
SMOKY, CLEAN = "t-air-alert-1", "t-air-alert-2"
# Smoky: four sensors agreeing on PM2.5 110-130 µg/m3 (the zone is 193, "bad"). Clean, 10 km away: three
# sensors at 15-25 and a fourth stuck at 900 (alone it would make the zone hazardous).
SMOKY_SENSORS = [
    Sensor(f"T-AIR-A{i}", 10.700 + 0.002 * i, 106.600, {"pm25": [v] * 12}) for i, v in enumerate((110, 120, 130, 125))
]
CLEAN_SENSORS = [
    Sensor(f"T-AIR-B{i}", 10.790 + 0.002 * i, 106.600, {"pm25": [v] * 12}) for i, v in enumerate((15, 20, 25, 900))
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def zones(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """The two zones and their sensors, removed afterwards with their alerts."""
    await seed_air(pool, SMOKY, "Smoky ward", SMOKY_SENSORS)
    await seed_air(pool, CLEAN, "Clean ward", CLEAN_SENSORS)
    yield
    await remove_air(pool, [s.device_id for s in SMOKY_SENSORS], SMOKY)
    await remove_air(pool, [s.device_id for s in CLEAN_SENSORS], CLEAN)


@pytest.fixture
def engine(pool: asyncpg.Pool, settings: Settings, tmp_path: Path) -> AlertEngine:
    """The alert engine with only the air rules (evaluated here, round by round: no leadership needed)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return AlertEngine(pool, settings.database_url, settings.model_copy(update={"alert_rules_file": rules}))


async def active(pool: asyncpg.Pool) -> dict[tuple[str, str], dict[str, Any]]:
    """Our active air alerts by (rule, device)."""
    rows = await pool.fetch(
        "SELECT rule, device_id, zone, severity, title, message, value FROM alerts "
        "WHERE state <> 'resolved' AND rule LIKE 't_air_%' AND zone = ANY($1::text[])",
        [SMOKY, CLEAN],
    )
    return {(r["rule"], r["device_id"]): dict(r) for r in rows}


async def evaluate_until(engine: AlertEngine, done: Callable[[], Awaitable[Any]], within: float, what: str) -> Any:
    """Run engine rounds until ``done()`` is truthy (a deadline, not a sleep: each round is real work)."""
    deadline = time.monotonic() + within
    while True:
        await engine.evaluate()
        result = await done()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


async def test_unhealthy_zone_opens_one_alert_and_a_broken_sensor_is_only_suspect(
    zones: None, engine: AlertEngine, pool: asyncpg.Pool
) -> None:
    want = aqi.hourly_index({"pm25": [130.0] * 12}).aqi
    assert want == 186

    async def opened() -> dict[tuple[str, str], dict[str, Any]] | None:
        alerts = await active(pool)
        return alerts if ("t_air_unhealthy", "T-AIR-A0") in alerts and len(alerts) >= 2 else None

    await engine.evaluate()
    first = await active(pool)
    assert ("t_air_unhealthy", "T-AIR-A0") not in first, "opened before the condition held for for_s"
    alerts = await evaluate_until(engine, opened, 20, "the zone alert and the suspect alert")
    zone = alerts[("t_air_unhealthy", "T-AIR-A0")]
    assert (zone["zone"], zone["severity"], zone["value"]) == (SMOKY, "warning", want)
    assert zone["title"] == "Unhealthy air: Smoky ward"
    assert zone["message"] == f"zone AQI {want} (PM2.5 at T-AIR-A2) >= 151"
    # The clean zone raises no pollution alert although one of its sensors reads 900 µg/m3: that one is suspect.
    assert [k for k in alerts if k[0] == "t_air_unhealthy"] == [("t_air_unhealthy", "T-AIR-A0")]
    suspect = alerts[("t_air_suspect", "T-AIR-B3")]
    assert suspect["message"].startswith("suspect sensor, not pollution: pm25 3 h mean 900.0 vs median 20.0 of 3")
    assert [k for k in alerts if k[0] == "t_air_suspect"] == [("t_air_suspect", "T-AIR-B3")]

    # The smoke clears: the zone alert resolves; the sensor is repaired: the suspect alert resolves too.
    async with pool.acquire() as conn:
        now = await conn.fetchval("SELECT now()")
        for s in SMOKY_SENSORS:
            await write_hours(conn, s.device_id, {"pm25": [20.0] * 12}, now)
        await write_hours(conn, "T-AIR-B3", {"pm25": [22.0] * 12}, now)

    async def cleared() -> bool:
        return not await active(pool)

    # The rules share a reading of the hourly means for AIR_READ_TTL_S (15 s).
    await evaluate_until(engine, cleared, 40, "both alerts to resolve")
    resolved = await pool.fetch(
        "SELECT rule, device_id FROM alerts WHERE state = 'resolved' AND rule LIKE 't_air_%' AND zone = ANY($1)",
        [SMOKY, CLEAN],
    )
    assert {(r["rule"], r["device_id"]) for r in resolved} >= {
        ("t_air_unhealthy", "T-AIR-A0"),
        ("t_air_suspect", "T-AIR-B3"),
    }


def test_shipped_rules_alert_on_an_hour_of_bad_air() -> None:
    """The shipped rules: VN_AQI 151 ("bad") sustained for an hour in a zone; 201 critical; suspect sensors."""
    rules = {r.id: r for r in parse((REPO_ROOT / "dashboards" / "rules.yaml").read_text()).rules}
    unhealthy = rules["air_unhealthy"]
    assert (unhealthy.type, unhealthy.warning, unhealthy.critical, unhealthy.for_s) == ("air_quality", 151, 201, 3600)
    assert aqi.band(151).key == "bad" and aqi.band(201).key == "very_bad"
    assert rules["air_suspect_sensor"].type == "air_suspect"


def test_an_air_quality_rule_needs_a_level() -> None:
    with pytest.raises(ValueError, match="rule t: set warning and/or critical"):
        parse("version: 1\nrules:\n  - {id: t, type: air_quality}\n")

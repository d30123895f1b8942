"""Forecast alerts end to end: a stored forecast that reaches the danger line opens a "forecast" alert with
its time and chance; it clears when the forecast no longer says so; and when the reading itself crosses, the
reading's alert takes over and the forecast alert resolves at once, naming it (no two alerts for one flood)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from forecast.models import Forecast
from forecast.store import write_forecasts
from ioc.db import REGISTRY_CHANNEL
from ioc.processes import free_port
from ioc.up import wait_http
from tests.support.stack import Broker, mosquitto_pub, until

pytestmark = pytest.mark.usefixtures("ingest")

RULES = """
version: 1
evaluate_every_s: 0.5
rules:
  - {id: t_level, type: threshold, kind: flood, metric: water_level_cm, warning: 20, critical: 30,
     warning_from: warning_cm, critical_from: danger_cm, for_s: 1, clear_delay_s: 2}
  - {id: t_fc, type: forecast, title: "Dự báo / Forecast: {name}", kind: flood, metric: water_level_cm,
     warning: 20, critical: 30, warning_from: warning_cm, critical_from: danger_cm, within_min: 60,
     min_probability: 0.5, observed_rule: t_level, for_s: 0, clear_delay_s: 2}
  - {id: t_jam_fc, type: forecast, title: "Dự báo ùn tắc / Forecast congestion: {name}", kind: traffic,
     metric: avg_speed_kmh, direction: below, warning: 15, within_min: 30, min_probability: 0.5, for_s: 0,
     clear_delay_s: 2}
"""
CAME_TRUE, WENT_AWAY = "T-FC-ALR-FL1", "T-FC-ALR-FL2"
RISING = {15: (22.0, 20.0, 24.0), 30: (26.0, 22.0, 30.0), 60: (34.0, 28.0, 40.0), 120: (40.0, 30.0, 50.0)}
FLAT = {15: (18.0, 16.0, 19.0), 30: (18.0, 16.0, 19.5), 60: (18.0, 15.0, 19.5), 120: (18.0, 14.0, 19.5)}


@pytest.fixture(scope="module")
def server(run_ioc, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server with the test rules and without its forecast job (the test stores the forecasts)."""
    rules = Path(tmp_path_factory.mktemp("fcalerts")) / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    env = {"IOC_FORECAST_ENABLED": "false", "IOC_ALERT_RULES_FILE": str(rules)}
    child = run_ioc("serve-forecast-alerts", "serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/v1/health", 30, child)
    yield base
    child.stop()


@pytest.fixture(scope="module")
async def sensors(pool: asyncpg.Pool) -> list[str]:
    """Two flood sensors (warning 20, danger 30 cm), no alerts left from an earlier run."""
    meta = json.dumps({"warning_cm": 20, "danger_cm": 30})
    for device_id in (CAME_TRUE, WENT_AWAY):
        await pool.execute(
            "INSERT INTO devices (device_id, kind, name, zone, metadata) VALUES ($1, 'flood', $1, 'q1', $2::jsonb) "
            "ON CONFLICT (device_id) DO UPDATE SET metadata = EXCLUDED.metadata, enabled = true",
            device_id,
            meta,
        )
    await pool.execute(
        "UPDATE alerts SET state = 'resolved' WHERE device_id = ANY($1) AND state <> 'resolved'",
        [
            CAME_TRUE,
            WENT_AWAY,
        ],
    )
    await pool.execute("SELECT pg_notify($1, 'test')", REGISTRY_CHANNEL)
    return [CAME_TRUE, WENT_AWAY]


def publish(broker: Broker, device_id: str, level: float) -> None:
    """One water level reading, now, over MQTT."""
    payload = {"ts": datetime.now(UTC).isoformat(), "metrics": {"water_level_cm": level}}
    mosquitto_pub(broker, f"ioc/v1/flood/{device_id}/telemetry", json.dumps(payload).encode())


async def store(pool: asyncpg.Pool, rounds: dict[str, dict[int, tuple[float, float, float]]]) -> None:
    """Store one forecast round (as the forecast job does)."""
    origin = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [
        Forecast(device_id, "water_level_cm", h, v, lo, hi, "model")
        for device_id, levels in rounds.items()
        for h, (v, lo, hi) in levels.items()
    ]
    async with pool.acquire() as conn:
        await write_forecasts(conn, origin, rows, {"flood": None})


async def alerts_of(pool: asyncpg.Pool, device_id: str, rule: str) -> list[asyncpg.Record]:
    """The alerts of ``rule`` for a device opened by this test (newest first)."""
    return await pool.fetch(  # type: ignore[no-any-return]
        "SELECT a.*, (SELECT note FROM alert_history h WHERE h.alert_id = a.id AND h.to_state = 'resolved') AS why "
        "FROM alerts a WHERE a.device_id = $1 AND a.rule = $2 AND a.opened_at > now() - interval '10 minutes' "
        "ORDER BY a.id DESC",
        device_id,
        rule,
    )


async def test_forecast_alert_opens_clears_and_hands_over(
    server: str, sensors: list[str], broker: Broker, pool: asyncpg.Pool
) -> None:
    for device_id in sensors:
        publish(broker, device_id, 18.0)

    async def at_18() -> bool:
        sql = (
            "SELECT count(*) FROM latest_values WHERE device_id = ANY($1) AND metric = 'water_level_cm' AND value = 18"
        )
        return await pool.fetchval(sql, sensors) == 2

    await until(at_18, 20, 0.2, "both sensors at 18 cm")
    await store(pool, {CAME_TRUE: RISING, WENT_AWAY: RISING})

    async def opened() -> bool:
        return all([await alerts_of(pool, d, "t_fc") for d in sensors])

    await until(opened, 20, 0.2, "a forecast alert for each sensor")
    (alert,) = await alerts_of(pool, CAME_TRUE, "t_fc")
    assert alert["severity"] == "critical" and alert["state"] == "open"
    assert alert["title"] == f"Dự báo / Forecast: {CAME_TRUE}"
    assert "in ~45 min" in alert["message"] and "77 % likely" in alert["message"], alert["message"]
    assert alert["value"] == 34.0  # the highest level forecast within the hour (+60: 34 cm, 80 % from 28 to 40)

    # The forecast no longer says so for one sensor: its alert clears after the clear delay.
    await store(pool, {CAME_TRUE: RISING, WENT_AWAY: FLAT})

    async def cleared() -> bool:
        rows = await alerts_of(pool, WENT_AWAY, "t_fc")
        return bool(rows) and rows[0]["state"] == "resolved"

    await until(cleared, 20, 0.2, "the forecast alert of the sensor that stays dry resolved")
    assert (await alerts_of(pool, WENT_AWAY, "t_fc"))[0]["why"] == "condition cleared"

    # The forecast comes true: the reading's alert opens and the forecast alert resolves at once, naming it.
    publish(broker, CAME_TRUE, 35.0)

    async def handed_over() -> bool:
        observed = await alerts_of(pool, CAME_TRUE, "t_level")
        forecast = await alerts_of(pool, CAME_TRUE, "t_fc")
        return bool(observed) and forecast[0]["state"] == "resolved"

    await until(handed_over, 20, 0.2, "the reading's alert taking over from the forecast alert")
    (observed,) = await alerts_of(pool, CAME_TRUE, "t_level")
    forecast = await alerts_of(pool, CAME_TRUE, "t_fc")
    assert forecast[0]["why"] == f"observed: alert {observed['id']} (t_level)"
    assert observed["state"] == "open" and len(forecast) == 1  # no second forecast alert beside the observed one
    await store(pool, {CAME_TRUE: RISING})  # the forecasts still rise: still no forecast alert while observed
    active = await pool.fetchval(
        "SELECT count(*) FROM alerts WHERE device_id = $1 AND rule = 't_fc' AND state <> 'resolved'", CAME_TRUE
    )
    assert active == 0


async def test_a_corridor_forecast_below_15_kmh_within_30_min(
    server: str, sensors: list[str], pool: asyncpg.Pool
) -> None:
    """A detector at 30 km/h forecast at 12 km/h in 30 minutes opens a forecast congestion alert (not one
    forecast to slow down only after 30 minutes)."""
    soon, late = "T-FC-ALR-TR1", "T-FC-ALR-TR2"
    for device_id in (soon, late):
        await pool.execute(
            "INSERT INTO devices (device_id, kind, name, zone) VALUES ($1, 'traffic', $1, 'q1') "
            "ON CONFLICT (device_id) DO UPDATE SET enabled = true",
            device_id,
        )
        await pool.execute(
            "INSERT INTO latest_values (device_id, metric, part, time, value) "
            "VALUES ($1, 'avg_speed_kmh', '', now(), 30) "
            "ON CONFLICT (device_id, metric, part) DO UPDATE SET time = now(), value = 30",
            device_id,
        )
    origin = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [
        Forecast(soon, "avg_speed_kmh", 15, 20.0, 16.0, 24.0, "model"),
        Forecast(soon, "avg_speed_kmh", 30, 12.0, 8.0, 16.0, "model"),
        Forecast(late, "avg_speed_kmh", 15, 29.0, 25.0, 33.0, "model"),
        Forecast(late, "avg_speed_kmh", 30, 27.0, 23.0, 31.0, "model"),
        Forecast(late, "avg_speed_kmh", 60, 10.0, 6.0, 14.0, "model"),
    ]
    async with pool.acquire() as conn:
        await write_forecasts(conn, origin, rows, {"traffic": None})

    async def opened() -> list[asyncpg.Record]:
        return await alerts_of(pool, soon, "t_jam_fc")

    (alert,) = await until(opened, 20, 0.2, "the forecast congestion alert")
    assert alert["severity"] == "warning" and alert["value"] == 12.0
    assert "avg_speed_kmh <= 15 in ~" in alert["message"] and alert["title"].startswith("Dự báo ùn tắc / Forecast")
    assert await alerts_of(pool, late, "t_jam_fc") == []

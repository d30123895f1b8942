"""The ``forecast:{zone}`` channel: a stored forecast round is pushed to the zone's subscribers with its
predicted crossings (time and chance), and the outlook arithmetic behind them (forecast.outlook)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from dashboards.live_state import CHANNEL_NAMES
from forecast.models import Forecast
from forecast.outlook import Point, chance, crossing
from forecast.store import write_forecasts
from ioc.db import FORECASTS_CHANNEL, REGISTRY_CHANNEL
from ioc.processes import free_port
from ioc.up import wait_http
from tests.support.auth import PASSWORD
from tests.support.live import LiveClient, login

ZONE = "q5"  # a zone of the demo fleet (a zone of our own would crowd the wall's zone chips)
FLOOD = "T-FC-LIVE-FL1"
CHANNEL = CHANNEL_NAMES["forecast"].format(ZONE)


# ------------------------------------------------------------ forecast.outlook (pure)


def test_chance_reads_the_three_quantiles() -> None:
    p = Point(60, value=30.0, lower=20.0, upper=40.0)
    assert chance(p, 30.0) == pytest.approx(0.5)
    assert chance(p, 20.0) == pytest.approx(0.9)
    assert chance(p, 40.0) == pytest.approx(0.1)
    assert chance(p, 25.0) == pytest.approx(0.7)
    assert chance(p, 10.0) == 0.95 and chance(p, 50.0) == 0.05
    assert chance(Point(60, 30.0), 30.0) == 0.5 and chance(Point(60, 29.0), 30.0) == 0.0  # no interval
    assert chance(Point(30, value=10.0, lower=5.0, upper=20.0), 15.0, above=False) == pytest.approx(0.7)


def test_crossing_time_is_interpolated_from_the_level_now() -> None:
    points = [Point(15, 22.0, 20.0, 24.0), Point(30, 26.0, 22.0, 30.0), Point(60, 34.0, 28.0, 40.0)]
    points.append(Point(120, 40.0, 30.0, 50.0))
    c = crossing(18.0, points, 30.0, 120)
    assert c is not None and c.eta_min == 45  # 26 cm at +30, 34 cm at +60: 30 cm half-way
    assert c.probability == pytest.approx(0.9)  # at +120 the lower bound is 30
    assert crossing(18.0, points, 30.0, 30) is None  # not within 30 minutes
    assert crossing(31.0, points, 30.0, 120) is None  # already past: the reading says so
    assert crossing(18.0, points, 45.0, 120) is None  # the median never gets there
    assert crossing(None, points, 20.0, 120).eta_min == 15  # type: ignore[union-attr]  # no level now: the horizon
    below = crossing(30.0, [Point(30, 10.0, 5.0, 14.0)], 15.0, 30, above=False)
    assert below is not None and below.eta_min == 22


# ------------------------------------------------------------ the channel on a real server


@pytest.fixture(scope="module")
def server(run_ioc, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server without a forecast job (this module writes the forecasts) and without alert rules."""
    rules = Path(tmp_path_factory.mktemp("fclive")) / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")
    port = free_port()
    env = {"IOC_FORECAST_ENABLED": "false", "IOC_WS_COALESCE_MS": "100", "IOC_ALERT_RULES_FILE": str(rules)}
    child = run_ioc("serve-forecast-live", "serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/v1/health", 30, child)
    yield base
    child.stop()


@pytest.fixture(scope="module")
async def sensor(pool: asyncpg.Pool) -> str:
    """A flood sensor (warning 20 cm, danger 30 cm) in Quận 5, at 18 cm now."""
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, zone, lat, lon, metadata) "
        "VALUES ($1, 'flood', 'Forecast street', $2, 10.8, 106.7, '{\"warning_cm\": 20, \"danger_cm\": 30}') "
        "ON CONFLICT (device_id) DO NOTHING",
        FLOOD,
        ZONE,
    )
    await pool.execute(
        "INSERT INTO latest_values (device_id, metric, part, time, value) VALUES ($1, 'water_level_cm', '', now(), 18) "
        "ON CONFLICT (device_id, metric, part) DO UPDATE SET time = now(), value = 18",
        FLOOD,
    )
    await pool.execute("SELECT pg_notify($1, 'test')", REGISTRY_CHANNEL)
    return FLOOD


def rising(device_id: str) -> list[Forecast]:
    """A forecast that reaches 30 cm half-way between +30 and +60 minutes."""
    levels = {15: (22.0, 20.0, 24.0), 30: (26.0, 22.0, 30.0), 60: (34.0, 28.0, 40.0), 120: (40.0, 30.0, 50.0)}
    return [Forecast(device_id, "water_level_cm", h, v, lo, hi, "model") for h, (v, lo, hi) in levels.items()]


async def test_a_stored_round_is_pushed_with_its_crossings(
    server: str, sensor: str, pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    token = await login(server, people["viewer"], PASSWORD)
    async with LiveClient(server.replace("http://", "ws://") + "/ws/v1/live", token) as client:
        await client.subscribe(CHANNEL)
        await client.wait_for(lambda c: CHANNEL in c.states, 20, "the forecast channel's snapshot")
        origin = datetime.now(UTC).replace(second=0, microsecond=0)
        async with pool.acquire() as conn:
            await write_forecasts(conn, origin, rising(sensor), {"flood": None})

        def outlook(c: LiveClient) -> dict | None:  # type: ignore[type-arg]
            view = c.states[CHANNEL]
            return next((d for d in view["devices"] if d["device_id"] == sensor and d["danger"]), None)

        shown = await client.wait_for(outlook, 20, "the pushed forecast with a danger crossing")
        assert client.states[CHANNEL]["origin"] == origin.isoformat()
        assert shown["name"] == "Forecast street" and shown["now"] == 18.0
        assert shown["danger"] == {"limit": 30.0, "eta_min": 45, "probability": 0.9}
        assert shown["warning"]["eta_min"] == 8 and [p["h"] for p in shown["points"]] == [15, 30, 60, 120]

        # The next round says the water stays low: the crossings go, on the same connection.
        flat = [Forecast(sensor, "water_level_cm", h, 18.0, 16.0, 20.5, "model") for h in (15, 30, 60, 120)]
        async with pool.acquire() as conn:
            await write_forecasts(conn, origin + timedelta(minutes=1), flat, {"flood": None})
        await client.wait_for(
            lambda c: all(d["danger"] is None and d["warning"] is None for d in c.states[CHANNEL]["devices"]),
            20,
            "the crossings cleared",
        )
        assert [m for m in client.messages if m["type"] == "error"] == []


async def test_storing_a_round_notifies_the_servers(pool: asyncpg.Pool, sensor: str, database_url: str) -> None:
    """``write_forecasts`` NOTIFYs ``ioc_forecasts`` in its transaction, with the round's origin."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(FORECASTS_CHANNEL, lambda *args: heard.put_nowait(args[3]))
        origin = datetime.now(UTC).replace(second=0, microsecond=0)
        async with pool.acquire() as conn:
            await write_forecasts(conn, origin, rising(sensor), {"flood": None})
        assert await asyncio.wait_for(heard.get(), 10) == origin.isoformat()
    finally:
        await listener.close()

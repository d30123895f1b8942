"""Air quality on the live server, end to end: stored readings -> hourly means -> VN_AQI on the ``air`` channel,
the summary's ``air`` block and ``/api/v1/air``; a reading through the broker moves the index."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from dashboards import air
from ioc import aqi
from ioc.processes import free_port
from ioc.up import wait_http
from tests.support.air import Sensor, remove_air, seed_air
from tests.support.auth import PASSWORD
from tests.support.live import LiveClient, login, session_headers
from tests.support.stack import Broker, mosquitto_pub

pytestmark = pytest.mark.usefixtures("ingest")

ZONE = "t-air-live"
# Four sensors that agree (PM2.5 40-80 µg/m3) and a fifth, 300 µg/m3, beside them: a broken sensor, not a fire.
HOURS = {
    "T-AIR-L1": {"pm25": [80.0] * 12, "no2": [118.7]},
    "T-AIR-L2": {"pm25": [40.0] * 12, "o3": [136.1]},
    "T-AIR-L3": {"pm25": [50.0] * 12},
    "T-AIR-L4": {"pm25": [60.0] * 12, "pm10": [90.0] * 12},
    "T-AIR-L5": {"pm25": [300.0] * 12},
}
SENSORS = [Sensor(d, 10.77 + 0.001 * i, 106.70 + 0.001 * i, h) for i, (d, h) in enumerate(HOURS.items())]
# One more sensor in a zone of its own, 10 km away, for the reading sent through the broker.
REPORTER = Sensor("T-AIR-L6", 10.86, 106.70, {"pm25": [40.0] * 12})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(pool: asyncpg.Pool) -> AsyncIterator[datetime]:
    """The five sensors with 12 hours of history, before the server starts."""
    await seed_air(pool, f"{ZONE}-2", "Air test zone 2", [REPORTER])
    yield await seed_air(pool, ZONE, "Air test zone", SENSORS)
    await remove_air(pool, [REPORTER.device_id], f"{ZONE}-2")
    await remove_air(pool, [s.device_id for s in SENSORS], ZONE)


@pytest.fixture(scope="module")
def server(run_ioc, seeded, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An API server without alert rules, 100 ms coalescing."""
    rules = Path(tmp_path_factory.mktemp("air")) / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")
    port = free_port()
    env = {"IOC_WS_COALESCE_MS": "100", "IOC_ALERT_RULES_FILE": str(rules)}
    child = run_ioc("serve-air", "serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/v1/health", 30, child)
    yield base
    child.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def token(server: str, people: dict[str, str]) -> str:
    """A viewer's session."""
    return await login(server, people["viewer"], PASSWORD)


def expected(device_id: str) -> int | None:
    """The index the module computes from the hourly means we stored."""
    return aqi.hourly_index(HOURS[device_id]).aqi


def points(state: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    """The channel's points of our sensors, by id."""
    return {p["device_id"]: p for p in state["points"] if p["zone"] == ZONE}


async def test_the_air_channel_carries_each_sensors_index_and_the_zones(server: str, token: str) -> None:
    async with LiveClient(server.replace("http://", "ws://") + "/ws/v1/live", token) as client:
        await client.subscribe("air", "summary")

        def ready(c: LiveClient) -> dict | None:  # type: ignore[type-arg]
            mine = points(c.states["air"])
            return c.states["air"] if len(mine) == 5 and all(p["aqi"] is not None for p in mine.values()) else None

        state = await client.wait_for(ready, within=30, what="the air channel with our five sensors")
        mine = points(state)
        assert {d: p["aqi"] for d, p in mine.items()} == {d: expected(d) for d in HOURS}
        assert mine["T-AIR-L1"]["aqi"] == 150 and mine["T-AIR-L1"]["band"] == "poor"
        assert mine["T-AIR-L2"]["dominant"] == "pm25" and mine["T-AIR-L2"]["us_aqi"] is not None
        # The outlier is suspect (robust z against its four neighbours) and counts nowhere.
        assert mine["T-AIR-L5"]["suspect"]["pollutant"] == "pm25" and mine["T-AIR-L5"]["suspect"]["neighbours"] == 4
        assert all(mine[d]["suspect"] is None for d in HOURS if d != "T-AIR-L5")
        zone = next(z for z in state["zones"] if z["zone_id"] == ZONE)
        assert (zone["aqi"], zone["band"], zone["dominant"], zone["device_id"], zone["sensors"]) == (
            150,
            "poor",
            "pm25",
            "T-AIR-L1",
            4,
        )
        assert state["city"]["aqi"] >= 150 and "T-AIR-L5" not in [w["device_id"] for w in state["worst"]]
        assert {"pollutant": "pm25", "sensors": 4} in state["dominant"] or state["dominant"][0]["sensors"] >= 4
        line = {"zone_id": ZONE, "aqi": 150, "band": "poor", "dominant": "pm25"}
        await client.wait_for(lambda c: line in c.states["summary"]["air"]["zones"], what="the zone in the summary")
        meta = client.messages[0]["data"]["meta"]
        assert [b["key"] for b in meta["thresholds"]["air"]["bands"]] == list(aqi.BAND_KEYS)
        assert meta["channels"]["air"] == "air" and meta["keys"]["points"] == "device_id"


async def test_a_reading_through_the_broker_moves_the_index(
    server: str, token: str, broker: Broker, pool: asyncpg.Pool
) -> None:
    """L6 reports 400 µg/m3 now: its latest hour's mean becomes (40 + 400) / 2, its NowCast and index follow."""
    want = aqi.hourly_index({"pm25": [220.0] + [40.0] * 11}).aqi
    async with LiveClient(server.replace("http://", "ws://") + "/ws/v1/live", token) as client:
        await client.subscribe("air")
        await client.wait_for(lambda c: "air" in c.states, what="the air snapshot")
        payload = {"ts": datetime.now(UTC).isoformat(), "metrics": {"pm25_ugm3": 400.0}}
        mosquitto_pub(broker, "ioc/v1/air/T-AIR-L6/telemetry", json.dumps(payload).encode())
        # Within the live state's AIR_MIN_GAP_S (20 s) of the last computation, plus the ingest's commit.
        await client.wait_for(lambda c: mine(c)["aqi"] == want, within=45, what=f"L6 at {want}")
    stored = await pool.fetchval(
        "SELECT value FROM measurements WHERE device_id = 'T-AIR-L6' AND metric = 'pm25_ugm3' ORDER BY time DESC"
    )
    assert stored == 400.0 and want == 186


def mine(c: LiveClient) -> dict:  # type: ignore[type-arg]
    """The reporter's point on a client's air channel."""
    return next(p for p in c.states["air"]["points"] if p["device_id"] == REPORTER.device_id)


async def test_rest_air_views(server: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=server, headers=session_headers(token), timeout=30) as http:
        whole = (await http.get("/api/v1/air")).json()
        assert points(whole)["T-AIR-L1"]["aqi"] == 150 and whole["meta"]["thresholds"]["air"]["index"] == "VN_AQI"
        one = (await http.get("/api/v1/air/devices/T-AIR-L1", params={"hours": 3})).json()
        assert one["now"]["aqi"] == 150 and one["now"]["sub"] == {"pm25": 150, "no2": 60}
        assert [h["aqi"] for h in one["history"]] == [150, 150, 150] and one["history"][-1]["time"].endswith("Z")
        assert one["hourly_means"]["pm25"] == [80.0] * 3 and one["device"]["kind"] == air.KIND
        zone = (await http.get(f"/api/v1/air/zones/{ZONE}", params={"hours": 2})).json()
        assert zone["zone"]["aqi"] == 150 and [h["aqi"] for h in zone["history"]] == [150, 150]
        assert len(zone["points"]) == 5
        for path in ("/api/v1/air/devices/NOPE", "/api/v1/air/zones/atlantis"):
            resp = await http.get(path)
            assert resp.status_code == 404, path
        assert (await http.get("/api/v1/air/devices/T-AIR-L1", params={"hours": 99})).status_code == 422

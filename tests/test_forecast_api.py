"""GET /api/v1/forecasts (and /tide, /skill) on a real server whose forecast job fills the forecasts table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.support.auth import signed_in
from tests.support.stack import serving, wait_rows

FLOOD = "T-FC-API-FL1"


@pytest.fixture(scope="module")
def api(run_ioc) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """One API server (with its forecast job) for this module."""
    with serving(run_ioc, "serve-forecast") as base:
        yield base


@pytest.fixture(scope="module")
async def flood(pool: asyncpg.Pool) -> str:
    """A flood sensor with the last three hours of minute rollups."""
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, 'flood', $1, 10.8, 106.7) "
        "ON CONFLICT (device_id) DO UPDATE SET enabled = true, lat = 10.8, lon = 106.7",
        FLOOD,
    )
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await pool.execute(
        "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
        "SELECT b, $1, 'water_level_cm', '', 1, 12.5, 12.5, 12.5 "
        "FROM generate_series($2::timestamptz, $3::timestamptz, interval '1 minute') b ON CONFLICT DO NOTHING",
        FLOOD,
        now - timedelta(hours=3),
        now + timedelta(minutes=5),
    )
    return FLOOD


async def test_the_job_forecasts_every_horizon_and_viewers_read_them(
    api: str, flood: str, pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    rows = await wait_rows(pool, "SELECT horizon_min FROM forecasts WHERE device_id = $1", flood, count=4, timeout=60)
    assert sorted(r["horizon_min"] for r in rows) == [15, 30, 60, 120]
    async with signed_in(api, people["viewer"]) as client:
        resp = await client.get("/api/v1/forecasts", params={"device": flood, "horizon": 30})
        assert resp.status_code == 200, resp.text
        (item,) = resp.json()["items"]
        assert item["metric"] == "water_level_cm" and item["kind"] == "flood" and item["horizon_min"] == 30
        assert item["value"] >= 0 and item["method"] in {"model", "persistence"}
        target = datetime.fromisoformat(item["target"]) - datetime.fromisoformat(item["origin"])
        assert target == timedelta(minutes=30)

        bad = await client.get("/api/v1/forecasts", params={"horizon": 45})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_horizon"

        tide = (await client.get("/api/v1/forecasts/tide", params={"hours": 24})).json()
        assert len(tide["points"]) == 24 * 6 + 1
        assert 3 <= len(tide["extremes"]) <= 5 and {e["type"] for e in tide["extremes"]} == {"high", "low"}

        skill = await client.get("/api/v1/forecasts/skill")
        assert skill.status_code == 200 and "backtest" in skill.json()

        spec = (await client.get("/openapi.json")).json()
        assert "/api/v1/forecasts" in spec["paths"] and "/api/v1/forecasts/tide" in spec["paths"]
    async with httpx.AsyncClient(base_url=api) as anonymous:
        assert (await anonymous.get("/api/v1/forecasts")).status_code == 401

"""A fifth kind of device by configuration only: a kinds file (``IOC_KINDS_FILE``) and a fleet file, no code.

The made-up kind ``noise`` (``laeq_db``) is imported into the registry, simulated from its ``simulate``
block, ingested and stored, served over REST and its live channel, and drawn on the device page's chart and
in the wall's health table, with the labels of the kinds file.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from playwright.async_api import Browser

from ioc.processes import Child, free_port
from ioc.up import Stack
from tests.support.auth import PASSWORD, signed_in
from tests.support.browser import wait_http, wait_live
from tests.support.live import LiveClient, login
from tests.support.stack import until

DEVICE = "NS-Q1-001"
KINDS_YAML = """
kinds:
  noise:
    label: {vi: "Cảm biến tiếng ồn", en: "Noise sensor"}
    interval_s: 60
    metrics:
      laeq_db: {unit: dB, min: 20, max: 140, senml: laeq, label: {vi: "Mức ồn LAeq", en: "Sound level LAeq"}}
    simulate:
      laeq_db: {base: 55, traffic: 18, noise: 1.5, digits: 1}
"""
FLEET_YAML = f"""
devices:
- device_id: {DEVICE}
  kind: noise
  format: canonical
  name: Nhà hát Thành phố
  zone: q1
  lat: 10.7766
  lon: 106.7031
"""


@dataclass
class Noise:
    """The running pieces: a server on its own port that knows the kind, and the files."""

    url: str
    kinds_file: Path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def noise(
    tmp_path_factory: pytest.TempPathFactory,
    stack: Stack,
    app_env: dict[str, str],
    run_ioc: Callable[..., Child],
    pool: asyncpg.Pool,
) -> AsyncIterator[Noise]:
    """Import the fleet, then run an ingest worker, a server and the simulator, all given only the two files."""
    folder = tmp_path_factory.mktemp("noise")
    kinds_file, fleet_file = folder / "kinds.yaml", folder / "fleet.yaml"
    kinds_file.write_text(KINDS_YAML, encoding="utf-8")
    fleet_file.write_text(FLEET_YAML, encoding="utf-8")
    env = {"IOC_KINDS_FILE": str(kinds_file)}
    done = subprocess.run(
        [sys.executable, "-m", "ioc.cli", "devices", "import", str(fleet_file)],
        env={**app_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert await pool.fetchval("SELECT kind FROM devices WHERE device_id = $1", DEVICE) == "noise"
    # A worker of its own share group: the session's worker (without the kind) quarantines the same messages.
    worker_env = {**env, "IOC_INGEST_SHARE_GROUP": "ioc-ingest-noise"}
    children = [run_ioc("ingest-noise", "ingest", "--client-id", "ingest-noise", "--metrics-port", "0", env=worker_env)]
    port = free_port()
    server = run_ioc("serve-noise", "serve", "--port", str(port), env=env)
    children.append(server)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/v1/health", server)
    sim = run_ioc("simulate-noise", "simulate", "--fleet", str(fleet_file), "--speed", "60", "--seed", "5", env=env)
    children.append(sim)
    try:
        yield Noise(url, kinds_file)
    finally:
        for child in reversed(children):
            child.stop()


async def test_a_configured_kind_is_ingested_stored_and_served(
    noise: Noise, pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    async def stored() -> list[asyncpg.Record]:
        return await pool.fetch("SELECT value FROM measurements WHERE device_id = $1 AND metric = 'laeq_db'", DEVICE)

    rows = await until(lambda: _at_least(stored, 3), 60, 0.3, "three simulated laeq_db readings stored")
    assert all(20 <= r["value"] <= 140 and r["value"] == round(r["value"], 1) for r in rows)
    async with signed_in(noise.url, people["viewer"]) as client:
        device = (await client.get(f"/api/v1/devices/{DEVICE}")).json()
        assert device["kind"] == "noise" and "laeq_db" in device["latest"]
        readings = await client.get(f"/api/v1/devices/{DEVICE}/readings", params={"metric": "laeq_db", "bucket": "raw"})
        assert readings.status_code == 200 and len(readings.json()["points"]) >= 3
    token = await login(noise.url, people["viewer"], PASSWORD)
    ws = noise.url.replace("http", "ws", 1) + "/ws/v1/live"
    async with LiveClient(ws, token) as live:
        await live.subscribe("kind:noise")
        seen = await live.wait_for(lambda c: c.states["kind:noise"]["devices"], 20, "the kind:noise snapshot")
        first = seen[0]["latest"]["laeq_db"]["time"]
        assert seen[0]["device_id"] == DEVICE
        await live.wait_for(
            lambda c: c.states["kind:noise"]["devices"][0]["latest"]["laeq_db"]["time"] > first,
            20,
            "a delta with a newer laeq_db reading",
        )


async def test_a_configured_kind_is_drawn_with_its_labels(
    noise: Noise, browser: Browser, pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    async def stored() -> list[asyncpg.Record]:
        return await pool.fetch("SELECT 1 FROM measurements WHERE device_id = $1", DEVICE)

    await until(lambda: _at_least(stored, 2), 60, 0.3, "simulated readings stored")
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        resp = await context.request.post(
            f"{noise.url}/api/v1/auth/login", data={"name": people["operator"], "password": PASSWORD}
        )
        assert resp.status == 200
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{noise.url}/devices/{DEVICE}?lang=en")
        title = page.locator("#metric-charts .chart-title").first
        await title.wait_for(timeout=30000)
        assert await title.inner_text() == "Sound level LAeq (dB)"
        await page.wait_for_selector("#metric-charts .chart-plot .scatterlayer path.js-line", state="attached")
        note = page.locator("#metric-charts .chart-note").first
        await page.wait_for_function("n => / data points$/.test(n.textContent)", arg=await note.element_handle())
        assert await page.locator("#device-kind").inner_text() == "Noise sensor"
        await page.goto(f"{noise.url}/wall?lang=vi")
        await wait_live(page)
        row = page.locator('#health-body tr[data-kind="noise"]')
        await row.wait_for(timeout=30000)
        assert await row.locator(".kind-name").inner_text() == "Cảm biến tiếng ồn"
        assert errors == []
    finally:
        await context.close()


async def _at_least(query: Callable[[], Awaitable[list[asyncpg.Record]]], n: int) -> list[asyncpg.Record] | None:
    rows = await query()
    return rows if len(rows) >= n else None

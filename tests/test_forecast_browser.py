"""Forecasts in the browser, in Vietnamese and English: the wall's "next 2 hours" panel and forecast peaks,
the tide, and the forecast band on a device chart. The server runs without its forecast job; the test
stores the forecast rounds itself (as the job does, through forecast.store), so it controls what is predicted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page

from forecast.models import Forecast
from forecast.store import write_forecasts
from ioc.db import REGISTRY_CHANNEL
from ioc.processes import Child, free_port
from ioc.up import Stack
from tests.support.browser import LiveServer, screenshot_path, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ZONE = "q7"  # a zone of the demo fleet (a zone of our own would crowd the wall's zone chips)
FLOOD = "T-FC-WALL-FL1"
TEXTS = {
    "vi": {
        "eta": "~45 phút",
        "chance": "khả năng 90 %",
        "level": "nguy hiểm",
        "tide": "đỉnh tới",
        "area": "2 giờ tới: 1 điểm dự báo, nguy hiểm sau ~45 phút",
        "none": "2 giờ tới: không dự báo ngập",
        "skill": "Sai số so với giữ nguyên, 7 ngày qua: +30 phút −34 % · +60 phút −20 %",
    },
    "en": {
        "eta": "~45 min",
        "chance": "90 % likely",
        "level": "danger",
        "tide": "next high",
        "area": "next 2 h: 1 expected, first danger in ~45 min",
        "none": "next 2 h: nothing expected",
        "skill": "Error vs persistence, last 7 d: +30 min −34 % · +60 min −20 %",
    },
}


@pytest.fixture(scope="module")
def live_server(stack: Stack, run_ioc: Callable[..., Child], ingest: Child) -> Iterator[LiveServer]:
    """The pages server of tests.support.browser, without its forecast job (this module stores the forecasts)."""

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        return run_ioc(name, *args, env={**(env or {}), "IOC_FORECAST_ENABLED": "false"})

    server = LiveServer(start=start, port=free_port())
    server.launch()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def sensor(pool: asyncpg.Pool) -> str:
    """A flood sensor (warning 20, danger 30 cm) at 18 cm, with the last hour of readings."""
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, zone, lat, lon, status, metadata) "
        "VALUES ($1, 'flood', 'Đường Dự Báo', $2, 10.79, 106.70, 'online', '{\"warning_cm\": 20, \"danger_cm\": 30}') "
        "ON CONFLICT (device_id) DO NOTHING",
        FLOOD,
        ZONE,
    )
    now = datetime.now(UTC)
    await pool.executemany(
        "INSERT INTO measurements (time, device_id, metric, part, value) VALUES ($1, $2, 'water_level_cm', '', $3) "
        "ON CONFLICT DO NOTHING",
        [(now - timedelta(minutes=m), FLOOD, 18.0 - m / 10) for m in range(0, 60, 5)],
    )
    await pool.execute(
        "INSERT INTO latest_values (device_id, metric, part, time, value) VALUES ($1, 'water_level_cm', '', now(), 18) "
        "ON CONFLICT (device_id, metric, part) DO UPDATE SET time = now(), value = 18",
        FLOOD,
    )
    await pool.execute("SELECT pg_notify($1, 'test')", REGISTRY_CHANNEL)
    return FLOOD


async def store_round(pool: asyncpg.Pool, levels: dict[int, tuple[float, float, float]]) -> None:
    """Store one forecast round for the sensor, as the forecast job does."""
    origin = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [Forecast(FLOOD, "water_level_cm", h, v, lo, hi, "model") for h, (v, lo, hi) in levels.items()]
    async with pool.acquire() as conn:
        await write_forecasts(conn, origin, rows, {"flood": None})


async def store_backtest(pool: asyncpg.Pool) -> None:
    """The newest backtest, as ``ioc forecast backtest --days 7`` stores it: flood MAE at +30 and +60 minutes."""
    results = [
        {"kind": "flood", "metric": "water_level_cm", "horizon_min": h, "method": method, "mae": mae}
        for h, model, persist in ((30, 0.66, 1.0), (60, 1.6, 2.0))
        for method, mae in (("model", model), ("persistence", persist))
    ]
    now = datetime.now(UTC)
    await pool.execute(
        "INSERT INTO forecast_backtests (days, test_from, test_until, results, crossings) "
        "VALUES (7, $1, $2, $3::jsonb, '[]'::jsonb)",
        now - timedelta(days=7),
        now,
        results,
    )


RISING = {15: (22.0, 20.0, 24.0), 30: (26.0, 22.0, 30.0), 60: (34.0, 28.0, 40.0), 120: (40.0, 30.0, 50.0)}
FLAT = {15: (18.0, 16.0, 19.0), 30: (18.0, 16.0, 19.5), 60: (18.0, 15.0, 19.5), 120: (18.0, 14.0, 19.5)}


@pytest.mark.parametrize("lang", ["vi", "en"])
async def test_wall_shows_the_next_two_hours_and_the_tide(
    live_server: LiveServer, open_page, sensor: str, pool: asyncpg.Pool, lang: str
) -> None:
    """A stored round predicting the danger line in ~45 min appears in the panel (time, chance, line), the
    flood chart draws the forecast peak with its interval, the tide shows its next high water; a new round
    that no longer predicts it takes the row away, live."""
    await store_round(pool, RISING)
    await store_backtest(pool)
    watched = await open_page(f"{live_server.url}/wall?lang={lang}")
    page = watched.page
    await wait_live(page)
    row = f'#outlook-list li[data-device="{sensor}"][data-level="danger"]'
    await page.wait_for_selector(row, timeout=20000)
    text = await page.inner_text(row)
    for key in ("eta", "chance", "level"):
        assert TEXTS[lang][key] in text, text
    assert "Đường Dự Báo" in text
    await page.wait_for_function(
        """(id) => (document.getElementById('flood-chart').data || []).some((tr) => tr.error_y
             && tr.x.some((x, i) => x === id && tr.y[i] === 40
                          && tr.error_y.array[i] === 10 && tr.error_y.arrayminus[i] === 10))""",
        arg=sensor.replace("FL-", ""),
        timeout=10000,
    )
    await page.wait_for_function("() => document.getElementById('tide-next').textContent.length > 0", timeout=15000)
    assert TEXTS[lang]["tide"] in await page.inner_text("#tide-next")
    skill = "() => document.getElementById('outlook-skill').textContent.includes('%')"
    await page.wait_for_function(skill, timeout=15000)
    assert await page.inner_text("#outlook-skill") == TEXTS[lang]["skill"]
    assert await page.evaluate("(document.getElementById('tide-chart').data || [])[0].x.length") > 100
    await page.screenshot(path=str(screenshot_path(f"wall-forecast-{lang}.png")))

    await store_round(pool, FLAT)
    await page.wait_for_selector(f'#outlook-list li[data-device="{sensor}"]', state="hidden", timeout=20000)
    watched.assert_clean()


async def chart_traces(page: Page, box: str) -> list[dict[str, Any]]:
    """Each trace (its ``meta`` and ``y``) of the chart in ``box``, once the page has drawn it."""
    await page.wait_for_selector(box, timeout=20000)
    script = "(box) => document.querySelector(box + ' .chart-plot').data.map((t) => ({meta: t.meta || '', y: t.y}))"
    return list(await page.evaluate(script, box))


@pytest.mark.parametrize("lang", ["vi", "en"])
async def test_device_chart_has_the_forecast_band(
    live_server: LiveServer, open_page, sensor: str, pool: asyncpg.Pool, lang: str
) -> None:
    """The device page draws the forecast after the history: the dashed median and the 80 % band."""
    await store_round(pool, RISING)
    watched = await open_page(f"{live_server.url}/devices/{sensor}?range=1h&lang={lang}")
    page = watched.page
    box = '#metric-charts .chart-box[data-forecast="4"]'
    traces = await chart_traces(page, box)
    median = next(t for t in traces if t["meta"] == "forecast")
    assert median["y"] == [18, 22, 26, 34, 40]  # from the level now to +120 min
    assert any(t["meta"] == "forecast-band" for t in traces)
    note = await page.inner_text(f"{box} .chart-note")
    assert ("dự báo 120 phút tới" if lang == "vi" else "forecast for the next 120 min") in note
    await page.screenshot(path=str(screenshot_path(f"device-forecast-{lang}.png")), full_page=True)
    watched.assert_clean()


@pytest.mark.parametrize("lang", ["vi", "en"])
async def test_tablet_summary_says_what_is_expected_per_zone(
    live_server: LiveServer, open_page, sensor: str, pool: asyncpg.Pool, lang: str
) -> None:
    """The leaders' summary on a tablet: the zone's row says what the next two hours hold, live."""
    await store_round(pool, RISING)
    watched = await open_page(f"{live_server.url}/summary?lang={lang}", width=1024, height=768, role="viewer")
    page = watched.page
    await wait_live(page)
    row = f'#areas-list li[data-expected="danger"] a[href="/zones/{ZONE}"]'
    await page.wait_for_selector(row, timeout=20000)
    assert TEXTS[lang]["area"] in await page.inner_text(row)
    await store_round(pool, FLAT)
    await page.wait_for_selector(f'#areas-list li[data-expected="none"] a[href="/zones/{ZONE}"]', timeout=20000)
    assert TEXTS[lang]["none"] in await page.inner_text(f'#areas-list a[href="/zones/{ZONE}"]')
    assert await page.get_attribute("a.whatif", "href") == "/simulate"
    watched.assert_clean()


@pytest.mark.parametrize("lang", ["vi", "en"])
async def test_zone_chart_has_each_sensors_forecast(
    live_server: LiveServer, open_page, sensor: str, pool: asyncpg.Pool, lang: str
) -> None:
    """The zone page's water chart continues each sensor's history with its forecast median, dashed."""
    await store_round(pool, RISING)
    watched = await open_page(f"{live_server.url}/zones/{ZONE}?range=1h&lang={lang}")
    page = watched.page
    medians = [t["y"] for t in await chart_traces(page, '#chart-flood[data-forecast="1"]') if t["meta"] == "forecast"]
    assert medians == [[18, 22, 26, 34, 40]]
    watched.assert_clean()

"""Every page in a real Chromium against the real stack: loads clean, renders live data, fits its screen."""

from __future__ import annotations

import pytest
from browser_fixtures import (  # noqa: F401 - fixtures
    LAYOUT_CHECK,
    LiveServer,
    browser,
    live_server,
    open_page,
    populated,
    screenshot_path,
    settle,
    wait_live,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(("path", "ready"), [
    ("/wall", "#health-body tr"),
    ("/summary", "#areas-list li"),
    ("/zones/q1", "#device-list li"),
    ("/devices/FL-BT-001", "#metric-charts .chart-box"),
])
async def test_page_loads_clean(live_server: LiveServer, open_page, path: str, ready: str) -> None:  # noqa: F811
    """The page loads, goes live and renders, with no console error, failed request or HTTP error."""
    watched = await open_page(live_server.url + path)
    await wait_live(watched.page)
    await watched.page.wait_for_selector(ready, timeout=10000)
    await settle(1.5)
    watched.assert_clean()


async def test_english_toggle_is_remembered(live_server: LiveServer, open_page) -> None:  # noqa: F811
    """?lang=en gives English; the choice survives a visit without the parameter; the toggle goes back."""
    watched = await open_page(live_server.url + "/summary?lang=en")
    page = watched.page
    await wait_live(page)
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.text_content("#h-areas") == "Areas at a glance"
    await page.goto(live_server.url + "/summary")
    await wait_live(page)
    assert await page.get_attribute("html", "lang") == "en"
    await page.click("#lang-toggle")
    await page.wait_for_function("document.documentElement.lang === 'vi'")
    await wait_live(page)
    assert await page.text_content("#h-areas") == "Tình hình khu vực"
    watched.assert_clean()


@pytest.mark.parametrize(("path", "name", "width", "height", "panels"), [
    ("/wall", "wall-1920x1080.png", 1920, 1080, ".topbar, .kpi, .panel"),
    ("/wall", "wall-3840x2160.png", 3840, 2160, ".topbar, .kpi, .panel"),
    ("/summary", "summary-1024x768.png", 1024, 768, ".s-top, .s-kpi, .panel"),
    ("/summary", "summary-768x1024.png", 768, 1024, ".s-top, .s-kpi, .panel"),
])
async def test_screen_fits(live_server: LiveServer, populated: None, open_page, path: str, name: str,  # noqa: F811
                           width: int, height: int, panels: str) -> None:
    """Screenshot at the target size; no panel overflows, overlaps another or leaves the viewport."""
    watched = await open_page(live_server.url + path, width, height)
    page = watched.page
    await wait_live(page)
    await settle(2.5)
    target = screenshot_path(name)
    await page.screenshot(path=str(target))
    print(f"screenshot: {target}")
    problems = await page.evaluate(LAYOUT_CHECK, panels)
    assert not problems, "\n".join(problems)
    watched.assert_clean()

"""Every page in a real Chromium against the real stack: loads clean, renders live data, fits its screen."""

from __future__ import annotations

import pytest
from browser_fixtures import (  # noqa: F401 - fixtures
    LAYOUT_CHECK,
    LiveServer,
    browser,
    live_server,
    open_page,
    people,
    populated,
    screenshot_path,
    settle,
    wait_live,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(("path", "ready"), [
    ("/wall", "#health-body tr"),
    ("/summary", "#areas-list li"),
    ("/zones/binhthanh?range=1h", "#device-list li"),
    ("/devices/FL-BT-001?range=1h", "#metric-charts .chart-box"),
])
async def test_page_loads_clean(live_server: LiveServer, populated: None, open_page,  # noqa: F811
                                path: str, ready: str) -> None:
    """With the simulated city running, the page loads, goes live and renders, without any console error,
    failed request or HTTP error, and asks nothing of other origins."""
    watched = await open_page(live_server.url + path)
    await wait_live(watched.page)
    await watched.page.wait_for_selector(ready, timeout=10000)
    await settle(1.5)
    if path.startswith(("/zones", "/devices")):
        target = screenshot_path(path.split("?")[0].strip("/").replace("/", "-") + ".png")
        await watched.page.screenshot(path=str(target), full_page=True)
        print(f"screenshot: {target}")
    watched.assert_clean()
    local = (live_server.url, "ws://127.0.0.1", "data:")
    elsewhere = [u for u in watched.requests if not u.startswith(local)]
    assert elsewhere == [], "pages must work offline: nothing from other origins"


async def test_map_tiles_only_when_configured(live_server: LiveServer, open_page) -> None:  # noqa: F811
    """No tile URL: no tiles; with one: slippy-map tiles at one zoom cover the fleet's bounding box."""
    watched = await open_page(live_server.url + "/wall")
    page = watched.page
    await wait_live(page)
    await page.wait_for_selector("#city-map .zone")
    assert await page.evaluate("document.querySelectorAll('#city-map .tiles image').length") == 0
    tiles = await page.evaluate("""async () => {
        const { CityMap } = await import('/static/js/map.js');
        const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        svg.style.width = '800px'; svg.style.height = '800px';
        document.body.appendChild(svg);
        const map = new CityMap(svg, { tileUrl: '/static/img/icon.svg?z={z}&x={x}&y={y}' });
        map.setZones([{ zone_id: 'a', name: 'A', lat: 10.70, lon: 106.60 },
                      { zone_id: 'b', name: 'B', lat: 10.87, lon: 106.77 }]);
        const images = [...svg.querySelectorAll('.tiles image')].map((i) => i.getAttribute('href'));
        svg.remove();
        return images;
    }""")
    assert tiles, "no tiles drawn"
    zooms = {t.split("z=")[1].split("&")[0] for t in tiles}
    assert len(zooms) == 1 and 11 <= int(zooms.pop()) <= 14, tiles
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


async def test_wall_scales_to_4k(live_server: LiveServer, open_page) -> None:  # noqa: F811
    """3840x2160 is the same layout as 1920x1080, twice as large (every panel at the same relative place)."""
    rects = []
    for width, height in [(1920, 1080), (3840, 2160)]:
        watched = await open_page(live_server.url + "/wall", width, height)
        await wait_live(watched.page)
        rects.append(await watched.page.evaluate(
            """([w, h]) => [...document.querySelectorAll('.panel, .kpi, .clock-time')].map((p) => {
                 const r = p.getBoundingClientRect();
                 return [p.id || p.className, r.left / w, r.top / h, r.width / w, r.height / h];
               })""", [width, height]))
        watched.assert_clean()
    for small, large in zip(*rects, strict=True):
        assert small[0] == large[0]
        assert all(abs(a - b) < 0.01 for a, b in zip(small[1:], large[1:], strict=True)), (small, large)


async def test_summary_touch_targets(live_server: LiveServer, open_page) -> None:  # noqa: F811
    """Every link and button on the tablet summary is at least 48 x 48 CSS px."""
    watched = await open_page(live_server.url + "/summary", 768, 1024, has_touch=True)
    await wait_live(watched.page)
    await watched.page.wait_for_selector("#areas-list li")
    small = await watched.page.evaluate(
        """() => [...document.querySelectorAll('a[href], button')].filter((el) => el.offsetParent !== null)
             .map((el) => [el.id || el.className || el.tagName, el.getBoundingClientRect()])
             .filter(([, r]) => r.width < 48 || r.height < 48)
             .map(([n, r]) => `${n} ${r.width}x${r.height}`)""")
    assert small == []
    watched.assert_clean()


async def test_drill_down_from_summary_with_ranges_and_csv(live_server: LiveServer, open_page) -> None:  # noqa: F811
    """Summary -> zone page -> device page by links; the range buttons re-query; the CSV link downloads."""
    watched = await open_page(live_server.url + "/summary", 1024, 768)
    page = watched.page
    await wait_live(page)
    await page.click("#areas-list li:first-child a")
    await page.wait_for_url("**/zones/*")
    await page.wait_for_selector("#device-list li a.name")
    await page.click("#device-list li:first-child a.name")
    await page.wait_for_url("**/devices/*")
    await page.wait_for_selector("#metric-charts .chart-box .csv[href]")
    async with page.expect_response(lambda r: "/readings?" in r.url and r.status == 200):
        await page.click('#ranges button[data-range="7d"]')
    assert await page.get_attribute('#ranges button[data-range="7d"]', "aria-pressed") == "true"
    assert "range=7d" in page.url
    # The tab names the device, even after the charts (built from translated templates) are drawn.
    name = (await page.text_content("#device-name") or "").strip()
    assert name and (await page.title()).startswith(name + " – ")
    href = await page.get_attribute("#metric-charts .chart-box .csv", "href") or ""
    assert "/readings.csv?" in href
    resp = await page.request.get(live_server.url + href)
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert (await resp.text()).splitlines()[0] == "time,avg,min,max,count"
    watched.assert_clean()


async def test_delta_merge_follows_the_contract(live_server: LiveServer, open_page) -> None:  # noqa: F811
    """live.js merges deltas as docs/api.md says: keyed lists by key, _removed drops, scalars replace."""
    watched = await open_page(live_server.url + "/summary")
    result = await watched.page.evaluate("""async () => {
        const { merge } = await import('/static/js/live.js');
        const state = {
          flood: { max_level_cm: 10,
                   top: [{ device_id: 'a', level_cm: 10 }, { device_id: 'b', level_cm: 5 }] },
          zones: [{ zone_id: 'q1', state: 'ok', open_alerts: 0 }],
          alerts: [{ id: 1, state: 'open', device_id: 'a' }],
          events: [{ time: 't1', device_id: 'c', type: 'x', severity: 'high' }],
          tags: ['a', 'b'],
        };
        merge(state, {
          flood: { max_level_cm: 12,
                   top: [{ device_id: 'a', level_cm: 12 }, { device_id: 'b', _removed: true },
                         { device_id: 'd', level_cm: 7 }] },
          zones: [{ zone_id: 'q1', state: 'warning' }],
          alerts: [{ id: 1, state: 'acknowledged' }, { id: 2, state: 'open', device_id: 'a' }],
          events: [{ time: 't1', device_id: 'c', type: 'y', severity: 'low' }],
          tags: ['c'],
        });
        return state;
    }""")
    assert result["flood"]["max_level_cm"] == 12
    assert result["flood"]["top"] == [{"device_id": "a", "level_cm": 12}, {"device_id": "d", "level_cm": 7}]
    assert result["zones"] == [{"zone_id": "q1", "state": "warning", "open_alerts": 0}]
    alerts = [(a["id"], a["state"], a["device_id"]) for a in result["alerts"]]
    assert alerts == [(1, "acknowledged", "a"), (2, "open", "a")]
    assert [e["type"] for e in result["events"]] == ["x", "y"]  # same time and device, other type: new
    assert result["tags"] == ["c"]
    watched.assert_clean()

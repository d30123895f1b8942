"""Every page in a real Chromium against the real stack: loads clean, renders live data, fits its screen."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from dashboards.delta import diff, list_key
from dashboards.live_state import CHANNEL_NAMES, META
from ioc.kinds import load_kinds
from tests.support.auth import PASSWORD
from tests.support.browser import LAYOUT_CHECK, LiveServer, screenshot_path, settle, wait_live
from tests.support.live import LiveClient, login

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


FIXED = [CHANNEL_NAMES["summary"], CHANNEL_NAMES["alerts"], CHANNEL_NAMES["events"]]
KINDS = list(load_kinds())  # the wall subscribes to every kind the server knows
ZONES = "SELECT coalesce(array_agg(zone_id), '{}') FROM zones"


@pytest.mark.parametrize(("path", "ready", "channels"), [
    ("/wall", "#health-body tr",
     [*FIXED, CHANNEL_NAMES["air"], CHANNEL_NAMES["incidents"], *(CHANNEL_NAMES["kind"].format(k) for k in KINDS)]),
    ("/summary", "#areas-list li", FIXED),
    ("/zones/binhthanh?range=1h", "#device-list li", [CHANNEL_NAMES["zone"].format("binhthanh")]),
    ("/devices/FL-BT-001?range=1h", "#metric-charts .chart-box", [CHANNEL_NAMES["device"].format("FL-BT-001")]),
])
async def test_page_loads_clean(live_server: LiveServer, populated: None, open_page, pool: asyncpg.Pool,
                                path: str, ready: str, channels: list[str]) -> None:
    """With the simulated city running, the page loads, goes live and renders, without any console error,
    failed request or HTTP error, and asks nothing of other origins. It subscribes to the channels the
    server names (``meta.channels``), and each answered with a snapshot."""
    if path in ("/wall", "/summary"):  # and every zone's forecasts
        channels = [*channels, *(CHANNEL_NAMES["forecast"].format(z) for z in await pool.fetchval(ZONES))]
    watched = await open_page(live_server.url + path)
    await wait_live(watched.page)
    await watched.page.wait_for_selector(ready, timeout=10000)
    subscribed = await watched.page.evaluate("window.iocLive.channels")
    assert sorted(subscribed) == sorted(channels)
    await watched.page.wait_for_function("window.iocLive.channels.every((c) => window.iocLive.state.has(c))")
    await settle(1.5)
    if path.startswith(("/zones", "/devices")):
        target = screenshot_path(path.split("?")[0].strip("/").replace("/", "-") + ".png")
        await watched.page.screenshot(path=str(target), full_page=True)
        print(f"screenshot: {target}")
    watched.assert_clean()
    local = (live_server.url, "ws://127.0.0.1", "data:")
    elsewhere = [u for u in watched.requests if not u.startswith(local)]
    assert elsewhere == [], "pages must work offline: nothing from other origins"


async def test_map_tiles_only_when_configured(live_server: LiveServer, open_page) -> None:
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


async def test_english_toggle_is_remembered(live_server: LiveServer, open_page) -> None:
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
async def test_screen_fits(live_server: LiveServer, populated: None, open_page, path: str, name: str,
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


async def test_wall_scales_to_4k(live_server: LiveServer, open_page) -> None:
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


async def test_summary_touch_targets(live_server: LiveServer, open_page) -> None:
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


async def test_drill_down_from_summary_with_ranges_and_csv(live_server: LiveServer, open_page) -> None:
    """Summary -> zone page -> device page by links; the range buttons re-query; the CSV link downloads."""
    watched = await open_page(live_server.url + "/summary", 1024, 768)
    page = watched.page
    await wait_live(page)
    await page.click("#areas-list li:first-child a")
    await page.wait_for_url("**/zones/*")
    await page.wait_for_selector("#device-list li a.name")
    # The zone's history charts fetch every device's readings once: leaving before they answer aborts the
    # requests, which the page's watcher rightly reports (it made this test fail at random).
    await page.wait_for_load_state("networkidle")
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


def keyed(value: Any, name: str = "") -> Any:
    """A state with every keyed list (the server's LIST_KEYS) turned into a dict by key: order-free equality."""
    if isinstance(value, dict):
        return {k: keyed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        key = list_key(name, value)
        if key is not None:
            ids = [item[key] for item in value]
            assert len(ids) == len(set(ids)), f"{name}: an item appears twice: {ids}"
            return {item[key]: keyed(item) for item in value}
        return [keyed(v) for v in value]
    return value


async def test_browser_merges_recorded_frames_as_the_server_does(
    live_server: LiveServer, open_page, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    """Frames recorded from the real server, among them an event changed after it was first sent (its camera
    snapshot stored later: the delta carries only its ``id`` and ``snapshot_url``), merged by live.js give
    exactly the state the server's own ``apply`` gives: one key per list, the server's (``meta.keys``)."""
    camera = "T-KEYS-CAM1"
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, zone, status, last_seen) "
        "VALUES ($1, 'camera', $1, 'q1', 'online', now()) ON CONFLICT (device_id) DO NOTHING",
        camera,
    )
    await pool.execute("DELETE FROM snapshots WHERE device_id = $1", camera)
    notice = json.dumps({"devices": [camera], "events": True})
    token = await login(live_server.url, people["viewer"], PASSWORD)
    ws_url = live_server.url.replace("http://", "ws://") + "/ws/v1/live"
    channels = ["events", "alerts", "summary", "kind:camera"]
    try:
        async with LiveClient(ws_url, token) as recorder:
            await recorder.subscribe(*channels)
            await recorder.wait_for(lambda c: set(channels) <= c.states.keys(), what="snapshots")
            assert recorder.states["events"]["meta"]["keys"]["events"] == "id"
            at = datetime.now(UTC)
            await pool.execute(
                "INSERT INTO events (time, device_id, type, severity, confidence) "
                "VALUES ($1, $2, 'traffic.accident', 'high', 0.9)",
                at,
                camera,
            )
            await pool.execute("SELECT pg_notify('ioc_ingest', $1)", notice)

            def ours(c: LiveClient) -> dict[str, Any] | None:
                return next((e for e in c.states["events"]["events"] if e["device_id"] == camera), None)

            first = await recorder.wait_for(ours, what="the new event")
            assert first["snapshot_url"] is None
            await pool.execute("INSERT INTO snapshots (device_id, time, data) VALUES ($1, now(), $2)", camera, b"\xff")
            await pool.execute("SELECT pg_notify('ioc_ingest', $1)", notice)
            await recorder.wait_for(lambda c: (ours(c) or {}).get("snapshot_url"), what="the event's snapshot")
            partial = [
                e
                for m in recorder.messages
                if m["channel"] == "events" and m["type"] == "delta"
                for e in m["data"].get("events", [])
                if e["id"] == first["id"] and "time" not in e
            ]
            assert partial, "the server sent the changed event as a partial item"
            frames = [json.dumps(m) for m in recorder.messages]
            expected = {ch: keyed(recorder.states[ch]) for ch in channels}

        watched = await open_page(live_server.url + "/summary")
        merged = await watched.page.evaluate(
            """async (frames) => {
                const { LiveClient } = await import('/static/js/live.js');
                const client = new LiveClient({ channels: [], onData: () => {} });
                clearInterval(client.watchdog);
                for (const frame of frames) client.receive(frame);
                return Object.fromEntries(client.state);
            }""",
            frames,
        )
        for channel in channels:
            assert keyed(merged[channel]) == expected[channel], channel
        # The rest of the contract, in frames the server's own diff makes: removals, scalars, plain lists.
        before = {
            "flood": {"max_level_cm": 10, "top": [{"device_id": "a", "level_cm": 10}, {"device_id": "b"}]},
            "zones": [{"zone_id": "q1", "state": "ok", "open_alerts": 0}],
            "alerts": [{"id": 1, "state": "open", "device_id": "a"}],
            "tags": ["a", "b"],
            "meta": META,
        }
        after = {
            "flood": {"max_level_cm": 12, "top": [{"device_id": "a", "level_cm": 12}, {"device_id": "d"}]},
            "zones": [{"zone_id": "q1", "state": "warning", "open_alerts": 0}],
            "alerts": [{"id": 1, "state": "acknowledged", "device_id": "a"}, {"id": 2, "state": "open"}],
            "tags": ["c"],
            "meta": META,
        }
        made = [
            json.dumps({"channel": "summary", "type": "snapshot", "ts": "", "data": before}),
            json.dumps({"channel": "summary", "type": "delta", "ts": "", "data": diff(before, after)}),
        ]
        merged = await watched.page.evaluate(
            """async (frames) => {
                const { LiveClient } = await import('/static/js/live.js');
                const client = new LiveClient({ channels: [], onData: () => {} });
                clearInterval(client.watchdog);
                for (const frame of frames) client.receive(frame);
                return client.state.get('summary');
            }""",
            made,
        )
        assert keyed(merged) == keyed(after)
        watched.assert_clean()
    finally:
        await pool.execute("DELETE FROM events WHERE device_id = $1", camera)
        await pool.execute("DELETE FROM devices WHERE device_id = $1", camera)
        await pool.execute("SELECT pg_notify('ioc_registry', 'test')")


async def test_names_are_drawn_as_written_in_charts(
    live_server: LiveServer, open_page, pool: asyncpg.Pool
) -> None:
    """A zone named ``<b>bold</b>`` and a device named ``<a href=x>x</a>``: Plotly draws the names as text
    (tick labels on the wall, legend on the zone page), never as a link or bold type."""
    zone, flood, traffic = "t-markup", "T-MARKUP-FL1", "T-MARKUP-TR1"
    await pool.execute(
        "INSERT INTO zones (zone_id, name, lat, lon) VALUES ($1, '<b>bold</b>', 10.78, 106.70) "
        "ON CONFLICT (zone_id) DO UPDATE SET name = EXCLUDED.name",
        zone,
    )
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone, lat, lon, status, last_seen) "
        "VALUES ($1, $2, $3, $4, 10.78, 106.70, 'online', now()) ON CONFLICT (device_id) DO UPDATE SET "
        "name = EXCLUDED.name, zone = EXCLUDED.zone, status = 'online', last_seen = now()",
        [(flood, "flood", "<a href=x>x</a>", zone), (traffic, "traffic", "<i>italic</i>", zone)],
    )
    await pool.executemany(
        "INSERT INTO latest_values (device_id, metric, part, time, value) VALUES ($1, $2, '', now(), $3) "
        "ON CONFLICT (device_id, metric, part) DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time",
        [(flood, "water_level_cm", 12.0), (traffic, "avg_speed_kmh", 33.0)],
    )
    await pool.execute(
        "INSERT INTO measurements (time, device_id, metric, part, value) "
        "SELECT now() - i * interval '1 minute', $1, 'water_level_cm', '', 10 + i FROM generate_series(1, 5) i "
        "ON CONFLICT DO NOTHING",
        flood,
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")
    no_markup = """(root) => [...document.querySelectorAll(`${root} a, ${root} [style*="bold"]`)].length"""
    texts = "(selector) => [...document.querySelectorAll(selector)].map((t) => t.textContent)"

    async def shows(page: Any, selector: str, text: str) -> None:
        deadline = time.monotonic() + 15
        while text not in (seen := await page.evaluate(texts, selector)):
            assert time.monotonic() < deadline, f"{selector} shows {seen}, not {text!r}"
            await asyncio.sleep(0.2)

    try:
        wall = await open_page(live_server.url + "/wall")
        await wait_live(wall.page)
        await shows(wall.page, "#traffic-chart .ytick text", "<b>bold</b>")
        assert await wall.page.evaluate(no_markup, "#traffic-chart") == 0
        wall.assert_clean()

        page = await open_page(live_server.url + f"/zones/{zone}?range=1h")
        await wait_live(page.page)
        await shows(page.page, "#chart-flood .legendtext", "<a href=x>x</a>")
        assert await page.page.evaluate(no_markup, "#chart-flood .chart-plot") == 0
        page.assert_clean()
    finally:
        await pool.execute("DELETE FROM measurements WHERE device_id = $1", flood)
        await pool.execute("DELETE FROM alerts WHERE device_id = ANY($1::text[])", [flood, traffic])
        await pool.execute("DELETE FROM devices WHERE device_id = ANY($1::text[])", [flood, traffic])
        await pool.execute("DELETE FROM zones WHERE zone_id = $1", zone)
        await pool.execute("SELECT pg_notify('ioc_registry', 'test')")

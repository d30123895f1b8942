"""Open incidents on the wall and the tablet, live, in Chromium: a badge on the map (by type and severity, large
enough to read from metres away at 1920x1080 and at 4K), the feed, the escalation banner for supervisors; the
summary's counts by severity and zone. Each change arrives over the websocket without a reload."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from incidents import store
from tests.support.auth import signed_in
from tests.support.browser import LAYOUT_CHECK, LiveServer, screenshot_path, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

BADGE_SIZE = (
    "(s) => { const r = document.querySelector(s).getBoundingClientRect(); return Math.min(r.width, r.height); }"
)


@pytest.fixture(scope="module", autouse=True)
async def no_other_open_incidents(pool: asyncpg.Pool) -> None:
    """Incidents other modules left open in the shared database are closed first: the wall's feed shows only the
    five most severe, and a critical one left behind would push this module's warning out of sight."""
    await pool.execute(
        "UPDATE incidents SET state = 'closed', resolved_at = coalesce(resolved_at, now()), closed_at = now() "
        "WHERE state IN ('new', 'assigned', 'in_progress')"
    )


async def _zone(pool: asyncpg.Pool) -> asyncpg.Record:
    """A zone of the demo city (so the incident falls on the wall's map)."""
    return await pool.fetchrow("SELECT zone_id, name, lat, lon FROM zones WHERE zone_id = 'binhthanh'")


async def test_an_incident_opens_changes_escalates_and_closes_on_the_wall(
    live_server: LiveServer, open_page: Any, pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    zone = await _zone(pool)
    wall = (await open_page(live_server.url + "/wall")).page  # 1920x1080, then the same page at 4K
    await wait_live(wall)
    async with signed_in(live_server.url, people["operator"]) as op:
        body = {"type": "flood", "title": "Ngập đường Xô Viết Nghệ Tĩnh", "lat": zone["lat"], "lon": zone["lon"]}
        incident = (await op.post("/api/v1/incidents", json=body)).json()
        iid = incident["id"]
        badge = f'#city-map [data-incident="{iid}"]'
        await wall.wait_for_selector(f'{badge}[data-type="flood"][data-severity="warning"]', state="attached")
        feed = f'#incident-feed li[data-key="{iid}"]'
        await wall.wait_for_selector(f'{feed}[data-severity="warning"]')
        assert "Ngập đường Xô Viết Nghệ Tĩnh" in (await wall.text_content(feed) or "")
        small_px = await wall.evaluate(BADGE_SIZE, badge)
        assert small_px >= 24, small_px  # readable from metres away

        raised = await op.post(
            f"/api/v1/incidents/{iid}/severity",
            json={"version": incident["version"], "severity": "critical", "reason": "nước lên nhanh"},
        )
        await wall.wait_for_selector(f'{badge}[data-severity="critical"]', state="attached")
        await wall.wait_for_selector(f'{feed}[data-severity="critical"]')

        async with pool.acquire() as conn, conn.transaction():  # the engine's escalation, as escalate_overdue makes it
            detail = {"limit": "acknowledge", "minutes": 5.0, "severity": "critical", "addressed_to": "supervisor"}
            await store.event(conn, iid, "escalation", store.ENGINE, detail)
        entry = f'#escalations:not([hidden]) #escalation-list li[data-key="{iid}:acknowledge"]'
        await wall.wait_for_selector(entry)
        text = await wall.text_content(entry) or ""
        assert f"#{iid}" in text and "5 phút" in text and "Trễ" in text, text  # which incident, what limit, how late
        await wall.wait_for_selector(f'{badge}[data-escalated="1"]', state="attached")
        for width, height, name in ((1920, 1080, "wall-incidents.png"), (3840, 2160, "wall-incidents-4k.png")):
            await wall.set_viewport_size({"width": width, "height": height})
            await wall.wait_for_function(f"innerWidth === {width}")
            await wall.screenshot(path=str(screenshot_path(name)))
            problems = await wall.evaluate(LAYOUT_CHECK, ".topbar, .kpi, .panel")
            assert not problems, "\n".join(problems)  # the banner and the feed fit, at 1920x1080 and at 4K
        big_px = await wall.evaluate(BADGE_SIZE, badge)
        print(f"incident badge: {small_px:.0f} px at 1920x1080, {big_px:.0f} px at 3840x2160")
        assert big_px >= 1.8 * small_px, (small_px, big_px)  # the same layout, twice as large

        taken = await op.post(f"/api/v1/incidents/{iid}/take", json={"version": raised.json()["version"]})
        await wall.wait_for_selector(entry, state="detached")  # answered: off the banner
        await op.post(
            f"/api/v1/incidents/{iid}/resolve", json={"version": taken.json()["version"], "override_reason": "đã rút"}
        )
        await wall.wait_for_selector(badge, state="detached")
        await wall.wait_for_selector(feed, state="detached")


async def test_the_tablet_counts_open_incidents_by_severity_and_zone(
    live_server: LiveServer, open_page: Any, pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    zone = await _zone(pool)
    tablet = (await open_page(live_server.url + "/summary", 1280, 800, role="viewer")).page
    await wait_live(tablet)
    async with signed_in(live_server.url, people["operator"]) as op:
        body = {"type": "report", "title": "Cây đổ", "lat": zone["lat"], "lon": zone["lon"], "severity": "critical"}
        incident = (await op.post("/api/v1/incidents", json=body)).json()
        row = f'#incident-list li[data-key="z{zone["zone_id"]}"]'
        await tablet.wait_for_selector(row)
        assert "nghiêm trọng" in (await tablet.text_content(row) or "")
        await tablet.wait_for_selector('#incident-counts[data-state="critical"]')
        iid = incident["id"]
        taken = (await op.post(f"/api/v1/incidents/{iid}/take", json={"version": incident["version"]})).json()
        resolve = {"version": taken["version"], "override_reason": "đã dọn"}
        assert (await op.post(f"/api/v1/incidents/{iid}/resolve", json=resolve)).status_code == 200

"""The operator console in a real Chromium: keyboard-first (j/k, Enter, a), the procedure, the timeline, nearby
cameras with their snapshots, a colleague's change shown as a conflict, both languages, fits 1920x1080."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from PIL import Image

from dashboards.api.deps import SESSION_COOKIE
from tests.support.auth import PASSWORD
from tests.support.browser import LAYOUT_CHECK, LiveServer, screenshot_path
from tests.support.live import http_origin, login

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LAT, LON = 10.93, 106.93  # away from the demo fleet: only our cameras are near
M_LAT = 1 / 111_195.0
CITY = ZoneInfo("Asia/Ho_Chi_Minh")


@asynccontextmanager
async def api(base: str, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client logged in as ``name`` (the browser tests' password), sending the page's Origin."""
    token = await login(base, name, PASSWORD)
    async with httpx.AsyncClient(base_url=base, timeout=10, headers={"Origin": http_origin(base)}) as client:
        client.cookies.set(SESSION_COOKIE, token)
        yield client


def jpeg(colour: tuple[int, int, int]) -> bytes:
    """A small JPEG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
async def cameras(pool: asyncpg.Pool) -> list[str]:
    """Two cameras near the incidents (one with a snapshot, 80 m north), one 2 km away."""
    tag = uuid.uuid4().hex[:6].upper()
    near, dark, far = f"T-CON-{tag}-1", f"T-CON-{tag}-2", f"T-CON-{tag}-3"
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, 'camera', $2, $3, $4)",
        [
            (near, f"Cam north {tag}", LAT + 80 * M_LAT, LON),
            (dark, f"Cam south {tag}", LAT - 200 * M_LAT, LON),
            (far, f"Cam far {tag}", LAT + 2000 * M_LAT, LON),
        ],
    )
    await pool.execute(
        "INSERT INTO snapshots (device_id, time, data) VALUES ($1, now(), $2)", near, jpeg((200, 40, 40))
    )
    return [near, dark, far]


async def report(client: httpx.AsyncClient, title: str, incident_type: str = "flood") -> dict[str, Any]:
    """Enter an incident as an operator would (a phone report)."""
    resp = await client.post(
        "/api/v1/incidents",
        json={"type": incident_type, "title": title, "lat": LAT, "lon": LON, "severity": "critical"},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_console_keyboard_workflow(
    live_server: LiveServer,  # noqa: F811
    open_page: Any,  # noqa: F811
    people: dict[str, str],  # noqa: F811
    cameras: list[str],
) -> None:
    base = live_server.url
    async with api(base, people["operator"]) as op, api(base, people["admin"]) as colleague:
        team = f"drain-{uuid.uuid4().hex[:6]}"
        made = await colleague.post("/api/v1/teams", json={"team_id": team, "name": f"Drainage {team}"})
        assert made.status_code == 201, made.text
        first = await report(op, f"Ngập sâu / Deep water {uuid.uuid4().hex[:4]}")
        second = await report(op, f"Ngập / Flooding {uuid.uuid4().hex[:4]}")

        watched = await open_page(f"{base}/console?lang=en&incident={first['id']}")
        page = watched.page
        await page.wait_for_selector("body[data-ready='true']")
        assert await page.text_content("h1") == "Incident console"
        await page.wait_for_selector(f"#d-title:has-text('#{first['id']}')")
        selected = page.locator(".c-item[aria-selected='true']")
        assert await selected.get_attribute("data-key") == str(first["id"])

        # j/k move the highlight through the list; Enter opens the highlighted incident.
        keys = [await n.get_attribute("data-key") for n in await page.locator(".c-item").all()]
        at = keys.index(str(first["id"]))
        await page.keyboard.press("j" if at + 1 < len(keys) else "k")
        moved = keys[at + 1] if at + 1 < len(keys) else keys[at - 1]
        assert await selected.get_attribute("data-key") == moved
        await page.keyboard.press("Enter")
        await page.wait_for_selector(f"#d-title:has-text('#{moved}')")
        await page.keyboard.press("k" if at + 1 < len(keys) else "j")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(f"#d-title:has-text('#{first['id']}')")

        # a: take it. The state and the timeline follow. The list's refresh after the action is held
        # back until the operator has typed a note: finishing the action must not wipe what they typed.
        released, held = asyncio.Event(), asyncio.Event()

        async def hold(route: Any) -> None:
            held.set()
            await released.wait()
            await route.continue_()

        await page.route("**/api/v1/incidents?state=open", hold)
        await page.keyboard.press("a")
        await page.wait_for_selector("#d-state[data-state='assigned']")
        assert people["operator"] in (await page.text_content("#d-assignee") or "")
        await page.wait_for_selector(f".c-tl-what:has-text('Assigned to {people['operator']}')")

        # The procedure: flood at the critical level lists the danger steps; tick one with a note.
        steps = await page.locator(".c-step-text").all_text_contents()
        assert any("Notify the district people's committee" in s for s in steps)
        assert any("Start the pump station" in s for s in steps)
        await asyncio.wait_for(held.wait(), 10)
        await page.fill("#note", "pump station 3 running")
        await page.eval_on_selector("#refreshed", "node => { node.textContent = ''; }")
        released.set()
        await page.wait_for_selector("#refreshed:not(:empty)")
        await page.unroute("**/api/v1/incidents?state=open", hold)
        assert await page.input_value("#note") == "pump station 3 running"
        await page.click(".c-step[data-key='start_pumps'] .c-tick")
        await page.wait_for_selector(".c-step[data-key='start_pumps'][data-done='true']")
        done = await page.text_content(".c-step[data-key='start_pumps'] .c-step-done") or ""
        assert people["operator"] in done and "pump station 3 running" in done
        await page.wait_for_selector(".c-tl-what:has-text('Step done: Start the pump station')")

        # Hand it to a field team as well.
        await page.select_option("#team-pick", team)
        await page.click("[data-action='team']")
        await page.wait_for_selector(f".c-tl-what:has-text('Handed to field team {team}')")

        # r with required steps left: the server's refusal is shown, nothing changes.
        await page.keyboard.press("r")
        await page.wait_for_selector("#message[data-kind='error']:has-text('required steps not done')")
        assert await page.get_attribute("#d-state", "data-state") == "assigned"

        # Nearby: the camera with a snapshot, nearest first, with its direction; the far one is not listed.
        await page.wait_for_selector(f".c-cam[data-key='{cameras[0]}'] img")
        cams = [await n.get_attribute("data-key") for n in await page.locator(".c-cam").all()]
        assert cams[:2] == cameras[:2] and cameras[2] not in cams
        assert "80 m N" in (await page.text_content(f".c-cam[data-key='{cameras[0]}'] .c-cam-where") or "")
        await page.wait_for_function(
            f"document.querySelector(\".c-cam[data-key='{cameras[0]}'] img\").naturalWidth > 0"
        )
        assert await page.is_visible(f".c-cam[data-key='{cameras[1]}'] .c-cam-none")

        # A colleague changes the incident meanwhile: the operator's next action is refused and the page says so.
        current = (await colleague.get(f"/api/v1/incidents/{first['id']}")).json()
        changed = await colleague.post(f"/api/v1/incidents/{first['id']}/start", json={"version": current["version"]})
        assert changed.status_code == 200
        await page.fill("#reason", "water falling")
        await page.select_option("#severity-pick", "warning")
        await page.click("[data-action='severity']")
        await page.wait_for_selector(
            f"#message[data-kind='error']:has-text('changed by {people['admin']}')", timeout=10000
        )
        await page.wait_for_selector("#d-state[data-state='in_progress']")  # shown as it now is
        assert (await colleague.get(f"/api/v1/incidents/{first['id']}")).json()["severity"] == "critical"

        problems = await page.evaluate(LAYOUT_CHECK, ".c-top, .c-list, .c-detail")
        assert problems == [], problems
        await page.screenshot(path=str(screenshot_path("console-en.png")))

        # c: a phone report, entered with its place; it opens at once with its type's procedure.
        await page.keyboard.press("c")
        await page.wait_for_selector("#new-form:not([hidden])")
        await page.select_option("#new-type", "report")
        await page.keyboard.type("Fallen tree on Lê Lợi")  # the title field has the focus
        await page.fill("#new-lat", str(LAT))
        await page.fill("#new-lon", str(LON))
        await page.click("#new-form button[type='submit']")
        await page.wait_for_selector("#d-title:has-text('Fallen tree on Lê Lợi')")
        assert await page.text_content("#d-type") == "Reported by phone"
        assert "Record the caller" in " ".join(await page.locator(".c-step-text").all_text_contents())
        watched.problems = [p for p in watched.problems if "409" not in p]  # the refusals above were expected
        watched.assert_clean()

        vi = await open_page(f"{base}/console?lang=vi&incident={second['id']}", role="viewer")
        await vi.page.wait_for_selector("body[data-ready='true']")
        assert await vi.page.text_content("h1") == "Bàn điều hành sự cố"
        await vi.page.wait_for_selector(f"#d-title:has-text('#{second['id']}')")
        assert await vi.page.text_content("#d-state") == "Mới"
        assert await vi.page.locator("[data-action='take']").is_hidden()  # viewers read only
        await vi.page.keyboard.press("a")  # and the key does nothing for them
        assert (await op.get(f"/api/v1/incidents/{second['id']}")).json()["state"] == "new"
        assert "Báo cáo Ủy ban nhân dân quận/huyện" in " ".join(
            await vi.page.locator(".c-step-text").all_text_contents()
        )
        problems = await vi.page.evaluate(LAYOUT_CHECK, ".c-top, .c-list, .c-detail")
        assert problems == [], problems
        await vi.page.screenshot(path=str(screenshot_path("console-vi.png")))
        vi.assert_clean()

        shift = await open_page(f"{base}/handover?lang=en")
        await shift.page.wait_for_selector("body[data-ready='true']")
        assert await shift.page.text_content("h1") == "Shift handover"
        open_row = shift.page.locator(f"#open tr[data-key='{first['id']}']")
        assert "In progress" in (await open_row.text_content() or "")
        events = await shift.page.locator("#events tr").all_text_contents()
        assert any(f"#{first['id']}" in e and "Step done: Start the pump station" in e for e in events)
        assert int(await shift.page.text_content("#k-incidents") or "0") >= 2
        shown_to = datetime.fromisoformat(await shift.page.input_value("#to")).replace(tzinfo=CITY)
        assert abs((shown_to - datetime.now(CITY)).total_seconds()) < 120  # the city's time, as the rest of the page
        await shift.page.screenshot(path=str(screenshot_path("handover-en.png")), full_page=True)
        await shift.page.fill("#from", "2020-01-01T07:00")
        await shift.page.fill("#to", "2020-01-01T15:00")
        await shift.page.click("#range button[type='submit']")
        await shift.page.wait_for_selector("#shift:has-text('01/01, 07:00')")  # read back as the city's time
        assert await shift.page.locator("#worked tr.empty").count() == 1
        shift.assert_clean()


async def test_a_supervisor_assigns_an_incident_to_a_named_operator(
    live_server: LiveServer,  # noqa: F811
    open_page: Any,  # noqa: F811
    people: dict[str, str],  # noqa: F811
) -> None:
    base, op, sup = live_server.url, people["operator"], people["supervisor"]
    async with api(base, op) as client:
        incident = await report(client, f"Cây đổ / Fallen tree {uuid.uuid4().hex[:4]}", "report")

    # An operator only takes: no operator picker, no assign button.
    mine = await open_page(f"{base}/console?lang=en&incident={incident['id']}")
    await mine.page.wait_for_selector(f"#d-title:has-text('#{incident['id']}')")
    assert await mine.page.locator("#operator-pick").is_hidden()
    assert await mine.page.locator("[data-action='assign']").is_hidden()
    mine.assert_clean()

    # A supervisor picks the operator from the server's list (viewers are not offered) and assigns.
    watched = await open_page(f"{base}/console?lang=en&incident={incident['id']}", role="supervisor")
    page = watched.page
    await page.wait_for_selector("body[data-ready='true']")
    await page.wait_for_selector(f"#d-title:has-text('#{incident['id']}')")
    offered = await page.eval_on_selector_all("#operator-pick option", "nodes => nodes.map((n) => n.value)")
    assert op in offered and sup in offered and people["viewer"] not in offered
    await page.select_option("#operator-pick", op)
    await page.click("[data-action='assign']")
    await page.wait_for_selector("#d-state[data-state='assigned']")
    assert op in (await page.text_content("#d-assignee") or "")
    await page.wait_for_selector(f".c-tl-what:has-text('Assigned to {op} by {sup}')")
    watched.assert_clean()

    vi = await open_page(f"{base}/console?lang=vi&incident={incident['id']}", role="supervisor")
    await vi.page.wait_for_selector(f".c-tl-what:has-text('Giao cho {op} bởi {sup}')")
    assert await vi.page.locator("[data-action='assign']").text_content() == "Giao cho điều hành viên"
    vi.assert_clean()

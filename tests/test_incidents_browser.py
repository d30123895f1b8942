"""From alert to closed incident in a real Chromium (issue 15's acceptance): a flood storm's alerts group into one
incident per hotspot; an operator takes one on the console (English), ticks its procedure, looks at and pins the
nearby camera, hands it to a field team (webhook and e-mail reach local servers); the field link from the e-mail
posts a note and a photo from a phone-sized page (Vietnamese); the incident is resolved and closed, and the
handover report shows it with its times."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import Browser

from tests.support.auth import signed_in
from tests.support.browser import open_watched, screenshot_path
from tests.support.incidents import M_LAT, publish_level
from tests.support.pictures import jpeg, jpeg_with_exif
from tests.support.receivers import Mailbox, Receiver, smtp_mailbox, webhook_receiver
from tests.support.stack import Broker, serving, until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LAT, LON = 10.91, 106.91  # away from the demo fleet and every other test's devices
CITY = ZoneInfo("Asia/Ho_Chi_Minh")
RULES = """
version: 1
evaluate_every_s: 0.5
rules:
  - id: t_storm_flood
    type: threshold
    title: "Ngập / Flooding: {name}"
    kind: flood
    metric: water_level_cm
    warning: 100000          # only the devices with the metadata below alert
    critical: 200000
    warning_from: t_storm_warning_cm
    critical_from: t_storm_danger_cm
    for_s: 0
    clear_delay_s: 3600
"""
# Elements of the page that reach past the phone's width.
WIDER_THAN_PHONE = """
() => [...document.querySelectorAll("body *")].filter((e) => e.offsetParent !== null || e.tagName === "svg")
  .map((e) => [e, e.getBoundingClientRect()])
  .filter(([, r]) => r.width && (r.left < -0.5 || r.right > innerWidth + 0.5))
  .map(([e, r]) => `${e.tagName}#${e.id}.${e.className} ${Math.round(r.left)}..${Math.round(r.right)}`)
"""
REQUIRED = (
    "verify_cameras",
    "notify_committee",
    "dispatch_drainage",
    "start_pumps",
    "place_barriers",
    "traffic_diversion",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The storm's alert rule, and the city's own flood procedure grouping its alerts within 400 m."""
    root = Path(tmp_path_factory.mktemp("storm"))
    (root / "rules.yaml").write_text(RULES)
    (root / "sop").mkdir()
    flood = (Path(__file__).resolve().parents[1] / "sop" / "flood.yaml").read_text(encoding="utf-8")
    flood = re.sub(r"rules: \[[^\]]*\]", "rules: [t_storm_flood]", flood).replace("radius_m: 800", "radius_m: 400")
    (root / "sop" / "flood.yaml").write_text(flood, encoding="utf-8")
    return root / "rules.yaml", root / "sop"


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    """The field team's webhook endpoint."""
    async with webhook_receiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """The field team's mail server."""
    with smtp_mailbox() as box:
        yield box


@pytest.fixture(scope="module")
def server(run_ioc: Any, files: tuple[Path, Path], mailbox: tuple[Mailbox, int]) -> Iterator[str]:
    """``ioc serve`` with the storm's rule and procedure, mailing the test SMTP server; this module's only server,
    so its alert engine leads and groups the alerts."""
    env = {
        "IOC_ALERT_RULES_FILE": str(files[0]),
        "IOC_SOP_DIR": str(files[1]),
        "IOC_SMTP_URL": f"smtp://127.0.0.1:{mailbox[1]}",
        "IOC_SMTP_FROM": "ioc-storm@localhost",
        "IOC_NOTIFY_BACKOFF_S": "0.2",
    }
    with serving(run_ioc, "serve-storm", env) as base:
        yield base


@pytest.fixture(scope="module")
async def storm(pool: asyncpg.Pool) -> dict[str, Any]:
    """Two hotspots 2 km apart, two flood sensors 150 m apart in each, a camera with a snapshot 90 m from the first."""
    tag = uuid.uuid4().hex[:6].upper()
    spots = {"a": (LAT, LON), "b": (LAT + 2000 * M_LAT, LON)}
    sensors = {
        f"T-STM-{tag}-{s.upper()}{n}": (s, lat + n * 150 * M_LAT, lon)
        for s, (lat, lon) in spots.items()
        for n in (0, 1)
    }
    camera = f"T-STM-{tag}-CAM"
    meta = {"t_storm_warning_cm": 20, "t_storm_danger_cm": 30}
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, lat, lon, metadata) VALUES ($1, 'flood', $1, $2, $3, $4)",
        [(d, lat, lon, meta) for d, (_, lat, lon) in sensors.items()],
    )
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, 'camera', $2, $3, $4)",
        camera,
        f"Camera Lê Lợi {tag}",
        LAT - 90 * M_LAT,
        LON,
    )
    await pool.execute(
        "INSERT INTO snapshots (device_id, time, data) VALUES ($1, now(), $2)", camera, jpeg((180, 60, 20), (64, 36))
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")
    return {"sensors": {d: s for d, (s, _, _) in sensors.items()}, "camera": camera}


async def grouped(pool: asyncpg.Pool, devices: list[str]) -> dict[str, int] | None:
    """Each device's incident (through its active alert of the storm rule), once every one has one."""
    rows = await pool.fetch(
        "SELECT a.device_id, ia.incident_id FROM alerts a JOIN incident_alerts ia ON ia.alert_id = a.id "
        "WHERE a.rule = 't_storm_flood' AND a.device_id = ANY($1::text[]) AND a.state <> 'resolved'",
        devices,
    )
    found = {r["device_id"]: r["incident_id"] for r in rows}
    return found if len(found) == len(devices) else None


def city(value: str) -> str:
    """An API time as the pages show it: the city's day/month, hour:minute."""
    return datetime.fromisoformat(value).astimezone(CITY).strftime("%d/%m, %H:%M")


@pytest.mark.usefixtures("ingest")
async def test_from_storm_to_closed_incident_with_a_field_team(
    server: str,
    storm: dict[str, Any],
    people: dict[str, str],
    receiver: Receiver,
    mailbox: tuple[Mailbox, int],
    pool: asyncpg.Pool,
    broker: Broker,
    browser: Browser,
) -> None:
    # The storm: the four sensors pass the danger level; the engine groups them into one incident per hotspot.
    for device in storm["sensors"]:
        await publish_level(pool, broker, device, 36.0)
    incident_of = await until(lambda: grouped(pool, list(storm["sensors"])), 60, 0.2, "the storm's alerts grouped")
    by_spot: dict[str, set[int]] = {}
    for device, spot in storm["sensors"].items():
        by_spot.setdefault(spot, set()).add(incident_of[device])
    assert all(len(ids) == 1 for ids in by_spot.values()) and len(by_spot["a"] | by_spot["b"]) == 2, by_spot
    (incident_id,) = by_spot["a"]

    contexts = []
    try:
        async with signed_in(server, people["admin"]) as admin, signed_in(server, people["operator"]) as op:
            team = f"drain-{uuid.uuid4().hex[:6]}"
            made = await admin.post(
                "/api/v1/teams",
                json={
                    "team_id": team,
                    "name": f"Đội thoát nước {team}",
                    "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
                    "email": f"{team}@example.test",
                },
            )
            assert made.status_code == 201, made.text

            # The operator, in English, at the desk: open it, take it (a), tick the whole procedure.
            context, desk = await open_watched(
                browser, f"{server}/console?lang=en&incident={incident_id}", login=(server, people["operator"])
            )
            contexts.append(context)
            page = desk.page
            await page.wait_for_selector("body[data-ready='true']")
            await page.wait_for_selector(f"#d-title:has-text('#{incident_id}')")
            assert await page.get_attribute("#d-state", "data-state") == "new"
            await page.keyboard.press("a")
            await page.wait_for_selector("#d-state[data-state='assigned']")
            for step in REQUIRED:
                await page.click(f".c-step[data-key='{step}'] .c-tick")
                await page.wait_for_selector(f".c-step[data-key='{step}'][data-done='true']")

            # Nearby: the camera with its snapshot, south of the incident: 90 m when the incident opened at the
            # hotspot's first sensor, 240 m at its second (whichever alert the engine saw first); pinned, its
            # picture joins the timeline.
            camera = storm["camera"]
            await page.wait_for_function(
                f"() => document.querySelector(\".c-cam[data-key='{camera}'] img\")?.naturalWidth > 0"
            )
            where = await page.text_content(f".c-cam[data-key='{camera}'] .c-cam-where") or ""
            assert "90 m S" in where or "240 m S" in where, where
            await page.click(f".c-cam[data-key='{camera}'] .c-pin")
            await page.wait_for_function(
                "() => document.querySelector(\".c-tl[data-kind='pin'] img.c-tl-pic\")?.naturalWidth > 0"
            )

            # Hand it to the field team: the webhook and the e-mail arrive, both with the field link.
            await page.select_option("#team-pick", team)
            await page.click("[data-action='team']")
            await page.wait_for_selector(f".c-tl-what:has-text('Handed to field team {team}')")
            await page.click("[data-action='field_link']")  # another link, to read out over the phone
            await page.wait_for_selector(f"#message[data-kind='info']:has-text('{server}/field/')")
            await until(lambda: receiver.requests and mailbox[0].messages, 20, 0.1, "the webhook and the e-mail")
            hook = json.loads(receiver.requests[-1][1])
            mail = message_from_bytes(mailbox[0].messages[-1].content).get_payload(decode=True).decode()
            found = re.search(r"https?://\S+/field/[A-Za-z0-9_-]+", mail)
            assert found and hook["field_link"] == found.group(0) and hook["incident"]["id"] == incident_id

            # The field team member's phone, in Vietnamese: the link from the e-mail, no login.
            context, phone = await open_watched(
                browser, f"{found.group(0)}?lang=vi", width=375, height=812, is_mobile=True, has_touch=True
            )
            contexts.append(context)
            mobile = phone.page
            await mobile.wait_for_selector("body[data-ready='true']")
            await mobile.wait_for_selector(f"#f-title:has-text('#{incident_id}')")
            assert await mobile.text_content("#f-severity") == "Nghiêm trọng"
            assert await mobile.text_content("#f-coords") == f"{LAT:.5f}, {LON:.5f}"
            assert (await mobile.get_attribute("#f-geo", "href") or "").startswith(f"geo:{LAT:.6f},{LON:.6f}")
            await mobile.wait_for_function(
                f"() => document.querySelector(\".f-cam[data-key='{camera}'] img\")?.naturalWidth > 0"
            )
            assert await mobile.locator(f"#f-map rect[data-key='{camera}']").count() == 1
            await mobile.screenshot(path=str(screenshot_path("field-vi.png")))  # what the phone shows first
            assert await mobile.locator(".f-step[data-done='true']").count() == len(REQUIRED)
            await mobile.fill("#f-note", "Nước sâu 40 cm, đã đặt rào chắn")
            await mobile.click("#f-note-form button")
            await mobile.wait_for_selector("#f-message[data-kind='info']:has-text('Đã gửi ghi chú')")
            await mobile.set_input_files(
                "#f-photo", {"name": "hien-truong.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_exif()}
            )
            await mobile.wait_for_selector("#f-photo-name:has-text('hien-truong.jpg')")
            await mobile.fill("#f-caption", "Rào chắn đã đặt")
            await mobile.click("#f-photo-form button")
            await mobile.wait_for_function(
                "() => document.querySelector(\".f-post[data-kind='photo'] img\")?.naturalWidth > 0"
            )
            targets = await mobile.evaluate(
                "[...document.querySelectorAll('button, .btn, input:not([type=file]), textarea')]"
                ".filter((e) => e.offsetParent).map((e) => e.getBoundingClientRect().height)"
            )
            assert min(targets) >= 44, targets  # touch targets
            wider = await mobile.evaluate(WIDER_THAN_PHONE)
            assert wider == [], wider  # one column: nothing sideways (the page scrolls down)
            assert await mobile.evaluate("document.documentElement.scrollWidth") <= 375
            await mobile.screenshot(path=str(screenshot_path("field-vi-posted.png")), full_page=True)
            phone.assert_clean()

            # Back at the desk: the note and the photo are in the timeline; resolve (r), then close.
            await page.wait_for_selector(".c-tl-what:has-text('From the field: Nước sâu 40 cm')", timeout=15000)
            await page.wait_for_function(
                "() => document.querySelector(\".c-tl[data-kind='photo'] img.c-tl-pic\")?.naturalWidth > 0"
            )
            await page.keyboard.press("r")
            await page.wait_for_selector("#d-state[data-state='resolved']")
            await page.click("[data-action='close']")
            await page.wait_for_selector("#d-state[data-state='closed']")
            await page.screenshot(path=str(screenshot_path("console-field-en.png")))
            desk.assert_clean()

            # The handover report (English) lists it among the incidents worked, with its times in the city's time.
            final = (await op.get(f"/api/v1/incidents/{incident_id}")).json()
            assert final["state"] == "closed" and final["team"] == team
            context, shift = await open_watched(
                browser, f"{server}/handover?lang=en", login=(server, people["operator"])
            )
            contexts.append(context)
            await shift.page.wait_for_selector("body[data-ready='true']")
            row = shift.page.locator(f"#worked tr[data-key='{incident_id}']")
            cells = [c.strip() for c in await row.locator("td").all_text_contents()]
            assert cells[2] == "Closed"
            times = [city(final[k]) for k in ("created_at", "acknowledged_at", "resolved_at", "closed_at")]
            assert cells[3:7] == times, (cells, times)
            events = await shift.page.locator("#events tr").all_text_contents()
            assert any(f"#{incident_id}" in e and "From the field: Nước sâu 40 cm" in e for e in events)
            assert await shift.page.locator(f"#open tr[data-key='{incident_id}']").count() == 0
            shift.assert_clean()

            # Closing revoked the team's links: the phone is told so, and sees nothing of the incident.
            links = (await op.get(f"/api/v1/incidents/{incident_id}/field-links")).json()["items"]
            assert [li["team"] for li in links] == [team, team] and not any(li["live"] for li in links)
            assert {li["revoked_by"] for li in links} == {people["operator"]}
            await mobile.goto(f"{found.group(0)}?lang=en")
            await mobile.wait_for_selector("body[data-ready='true'][data-link='gone']")
            assert await mobile.text_content("#f-gone-title") == "This link has ended"
            assert "Nước sâu" not in await mobile.content()
    finally:
        for context in contexts:
            await context.close()

"""Monthly statistics per zone and type, exactly, on a fixture month (March 2020, nothing else in it), through
the REST API of a real ``ioc serve``: month boundaries in Ho Chi Minh City's time, JSON and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser

from incidents.statistics import month_bounds
from tests.support.auth import PASSWORD, signed_in
from tests.support.stack import serving

ZONE_A, ZONE_B = "t_stat_a", "t_stat_b"
NAME_A, NAME_B = "Phường Bến Nghé (thử)", "Xã Bình Hưng (thử)"
DEVICE = "T-STAT-FL-1"


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    """A time in 2020 (UTC)."""
    return datetime(2020, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
async def fixture_month(pool: asyncpg.Pool) -> None:
    """Alerts, incidents and escalations in March 2020 (city time), and some just outside it."""
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO zones (zone_id, name, lat, lon) VALUES ($1, $2, 10.7769, 106.7009) ON CONFLICT DO NOTHING",
            [(ZONE_A, NAME_A), (ZONE_B, NAME_B)],
        )
        await conn.execute(
            "INSERT INTO devices (device_id, kind, name, zone) VALUES ($1, 'flood', $1, $2) ON CONFLICT DO NOTHING",
            DEVICE,
            ZONE_A,
        )
        alerts = [  # (rule, zone, opened_at): flood_level and flood_rise group into flood; device_offline into none
            ("flood_level", ZONE_A, utc(2, 3)),  # 2 March
            ("flood_rise", ZONE_A, utc(29, 17, 30, month=2)),  # 29 Feb 17:30 UTC = 1 March 00:30 in the city: in
            ("device_offline", ZONE_A, utc(10, 1)),
            ("traffic_jam", ZONE_B, utc(31, 16, 59)),  # 31 March 23:59 in the city: in
            ("traffic_jam", ZONE_B, utc(31, 17, 0)),  # 1 April 00:00 in the city: out
        ]
        for rule, zone, opened in alerts:
            await conn.execute(
                "INSERT INTO alerts (rule, device_id, zone, severity, state, title, opened_at, resolved_at) "
                "VALUES ($1, $2, $3, 'warning', 'resolved', 'thử', $4, $4)",
                rule,
                DEVICE,
                zone,
                opened,
            )
        incidents = [  # (type, zone, created, acknowledged, resolved)
            ("flood", ZONE_A, utc(2, 3), utc(2, 3, 4), utc(2, 5)),  # ack 240 s, resolve 7200 s
            ("flood", ZONE_A, utc(29, 17, 30, month=2), utc(29, 17, 40, month=2), None),  # ack 600 s (in March)
            ("traffic", ZONE_B, utc(15, 8), None, utc(15, 9)),  # resolve 3600 s, never acknowledged
            ("traffic", ZONE_B, utc(31, 17, 0), utc(31, 17, 1), None),  # April in the city: out
        ]
        for kind, zone, created, acked, resolved in incidents:
            iid = await conn.fetchval(
                "INSERT INTO incidents (type, title, severity, state, origin, zone, created_by, updated_by, "
                "created_at, acknowledged_at, resolved_at) "
                "VALUES ($1, 'thử', 'warning', $2, 'operator', $3, 'tests', 'tests', $4, $5, $6) RETURNING id",
                kind,
                "resolved" if resolved else "assigned",
                zone,
                created,
                acked,
                resolved,
            )
            if kind == "flood" and resolved:  # two limits passed on the first flood
                for limit in ("acknowledge", "resolve"):
                    await conn.execute(
                        "INSERT INTO incident_events (incident_id, kind, actor, time, detail) "
                        "VALUES ($1, 'escalation', 'engine', $2, $3)",
                        iid,
                        utc(2, 4),
                        {"limit": limit, "minutes": 1},
                    )


@pytest.fixture(scope="module")
def server(run_ioc: Any, fixture_month: None) -> Iterator[str]:
    """One ``ioc serve`` with the repository's procedures (sop/)."""
    with serving(run_ioc, "serve-statistics") as base:
        yield base


def test_a_month_runs_midnight_to_midnight_in_the_city() -> None:
    assert month_bounds("2020-03") == (utc(29, 17, month=2), utc(31, 17))
    assert month_bounds("2020-12") == (datetime(2020, 11, 30, 17, tzinfo=UTC), datetime(2020, 12, 31, 17, tzinfo=UTC))
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("2020-13")


async def test_monthly_figures_per_zone_and_type(server: str, people: dict[str, str]) -> None:
    async with signed_in(server, people["viewer"]) as viewer:
        stats = (await viewer.get("/api/v1/statistics/monthly", params={"month": "2020-03"})).json()
        bad = await viewer.get("/api/v1/statistics/monthly", params={"month": "2020-3"})
        assert bad.status_code == 422
    rows = {(r["zone"], r["type"]): r for r in stats["rows"]}
    figures = ("alerts", "incidents", "resolved", "mean_acknowledge_s", "mean_resolve_s", "breaches")
    assert {k: tuple(r[f] for f in figures) for k, r in rows.items()} == {
        (ZONE_A, "flood"): (2, 2, 1, 420.0, 7200.0, 2),
        (ZONE_A, None): (1, 0, 0, None, None, 0),  # device_offline makes no incidents
        (ZONE_B, "traffic"): (1, 1, 1, None, 3600.0, 0),
    }
    assert rows[(ZONE_A, "flood")]["zone_name"] == NAME_A
    assert rows[(ZONE_A, "flood")]["type_name"] == {"vi": "Ngập lụt", "en": "Flooding"}
    assert stats["totals"] == {
        "alerts": 4,
        "incidents": 3,
        "resolved": 2,
        "mean_acknowledge_s": 420.0,
        "mean_resolve_s": 5400.0,
        "breaches": 2,
    }
    assert (stats["from"], stats["to"], stats["timezone"]) == (
        "2020-02-29T17:00:00Z",
        "2020-03-31T17:00:00Z",
        "Asia/Ho_Chi_Minh",
    )


async def test_monthly_csv_keeps_vietnamese_names(server: str, people: dict[str, str]) -> None:
    async with signed_in(server, people["viewer"]) as viewer:
        resp = await viewer.get("/api/v1/statistics/monthly.csv", params={"month": "2020-03"})
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="ioc-incidents-2020-03.csv"' in resp.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8"))))
    assert [(r["zone"], r["type_name"], r["alerts"], r["mean_acknowledge_s"]) for r in lines] == [
        (NAME_A, "Ngập lụt", "2", "420.0"),
        (NAME_A, "", "1", ""),
        (NAME_B, "Ùn tắc giao thông", "1", ""),
    ]
    assert resp.content.startswith(b"month,zone_id,zone,type,type_name,alerts,incidents,resolved,")


@pytest.mark.browser
async def test_the_handover_page_shows_a_chosen_month(server: str, people: dict[str, str], browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        resp = await context.request.post(
            f"{server}/api/v1/auth/login", data={"name": people["viewer"], "password": PASSWORD}
        )
        assert resp.status == 200
        page = await context.new_page()
        await page.goto(f"{server}/handover")
        await page.wait_for_selector("body[data-monthly]")
        await page.fill("#month", "2020-03")
        await page.click("#monthly-form button[type=submit]")
        await page.wait_for_selector("body[data-monthly='2020-03']")
        flood = await page.text_content(f'#monthly tr[data-key="{ZONE_A}|flood"]') or ""
        assert NAME_A in flood and "Ngập lụt" in flood and "7,0 phút" in flood and "2,0 giờ" in flood, flood
        total = await page.text_content('#monthly-total tr[data-key="total"]') or ""
        assert "Toàn thành phố" in total and "1,5 giờ" in total, total
        href = await page.get_attribute("#monthly-csv", "href")
        assert href == "/api/v1/statistics/monthly.csv?month=2020-03&lang=vi"
    finally:
        await context.close()

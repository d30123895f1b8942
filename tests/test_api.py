"""REST API through a real ``ioc serve`` process on the test database: shapes, filters, readings, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from dashboards.encoding import iso
from ioc.db import REGISTRY_CHANNEL
from tests.support.auth import signed_in
from tests.support.stack import serving

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
FLOOD = "T-API-FL1"
TRAFFIC = "T-API-TR1"
CAMERA = "T-API-CAM1"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32 + b"\xff\xd9"


@pytest.fixture(scope="module")
def api(run_ioc) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """One API server for this module, stopped at its end."""
    with serving(run_ioc, "serve-api") as base:
        yield base


@pytest.fixture(scope="module")
async def devices(pool: asyncpg.Pool) -> list[str]:
    """Three test devices in zone q5 with a day of readings, rollups, an event and a snapshot."""
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone, interval_s, metadata, status, last_seen) "
        "VALUES ($1, $2, $1, 'q5', 60, $3, 'online', now()) ON CONFLICT (device_id) DO UPDATE SET "
        "metadata = EXCLUDED.metadata, status = 'online', zone = 'q5'",
        [
            (FLOOD, "flood", {"warning_cm": 15, "danger_cm": 25}),
            (TRAFFIC, "traffic", {"free_flow_kmh": 40}),
            (CAMERA, "camera", {}),
        ],
    )
    # Raw readings every 10 s for 2 h, value = minutes since the start; rollups over 24 h.
    start = NOW - timedelta(hours=2)
    await pool.execute(
        "INSERT INTO measurements (time, device_id, metric, part, value) "
        "SELECT t, $1, 'water_level_cm', '', extract(epoch FROM t - $2::timestamptz) / 60 "
        "FROM generate_series($2::timestamptz, $3::timestamptz - interval '10 seconds', "
        "interval '10 seconds') t "
        "ON CONFLICT DO NOTHING",
        FLOOD,
        start,
        NOW,
    )
    await pool.execute(
        "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
        "SELECT b, $1, 'water_level_cm', '', 6, 6 * 10.0, 9.0, 11.0 "
        "FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 minute', interval '1 minute') b "
        "ON CONFLICT DO NOTHING",
        FLOOD,
        NOW - timedelta(days=1),
        NOW,
    )
    await pool.executemany(
        "INSERT INTO latest_values (device_id, metric, part, time, value) VALUES ($1, $2, '', now(), $3) "
        "ON CONFLICT (device_id, metric, part) DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time",
        [(FLOOD, "water_level_cm", 18.0), (TRAFFIC, "avg_speed_kmh", 10.0), (TRAFFIC, "vehicle_count", 30.0)],
    )
    await pool.execute(
        "INSERT INTO events (time, device_id, type, severity, confidence, attrs) "
        "VALUES (now(), $1, 'traffic.accident', 'high', 0.9, '{\"lane\": 2}') ON CONFLICT DO NOTHING",
        CAMERA,
    )
    await pool.execute(
        "INSERT INTO snapshots (device_id, time, data) VALUES ($1, now(), $2) "
        "ON CONFLICT (device_id) DO UPDATE SET data = EXCLUDED.data",
        CAMERA,
        JPEG,
    )
    await pool.execute(
        "INSERT INTO quarantine (topic, payload, reason, detail) VALUES ('ioc/v1/x/y/telemetry', $1, "
        "'test_reason', 'bad bytes')",
        b"\xff\x00not json",
    )
    await pool.execute("SELECT pg_notify($1, 'test')", REGISTRY_CHANNEL)
    return [FLOOD, TRAFFIC, CAMERA]


@pytest.fixture
async def client(api: str, devices: list[str], people: dict[str, str]) -> httpx.AsyncClient:
    """An HTTP client on the module's server, logged in as an admin (who may call every route)."""
    async with signed_in(api, people["admin"]) as c:
        yield c  # type: ignore[misc]


def assert_error(resp: httpx.Response, status: int, code: str) -> None:
    """The response is our JSON error shape with this status and code."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


async def test_health_reports_each_part(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/health")).json()
    assert body["status"] in ("ok", "degraded")
    assert body["database"]["ok"] is True and body["broker"]["ok"] is True
    assert body["broker"]["url"].startswith("mqtt://") and "@" not in body["broker"]["url"]
    assert isinstance(body["ingest"]["workers"], list) and "version" in body


async def test_device_filters_and_pages(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/devices", params={"zone": "q5", "kind": "flood"})).json()
    ids = [d["device_id"] for d in body["items"]]
    assert FLOOD in ids and all(d["kind"] == "flood" and d["zone"] == "q5" for d in body["items"])
    assert body["total"] == len(ids)
    page = (await client.get("/api/v1/devices", params={"limit": 2, "offset": 1})).json()
    assert len(page["items"]) == 2 and page["total"] > 2
    online = (await client.get("/api/v1/devices", params={"status": "online", "zone": "q5"})).json()
    assert {FLOOD, TRAFFIC, CAMERA} <= {d["device_id"] for d in online["items"]}


async def test_device_has_latest_level_and_congestion(client: httpx.AsyncClient) -> None:
    flood = (await client.get(f"/api/v1/devices/{FLOOD}")).json()
    assert flood["latest"]["water_level_cm"]["value"] == 18.0 and flood["latest"]["water_level_cm"]["time"].endswith(
        "Z"
    )
    assert flood["level"] == "warning" and flood["congestion"] is None  # warning_cm 15 from metadata
    traffic = (await client.get(f"/api/v1/devices/{TRAFFIC}")).json()
    assert traffic["congestion"] == 3 and traffic["level"] is None  # 10 / 40 km/h = 0.25


async def test_zones_and_summary(client: httpx.AsyncClient) -> None:
    zones = (await client.get("/api/v1/zones")).json()
    q5 = next(z for z in zones["items"] if z["zone_id"] == "q5")
    assert q5["summary"]["devices"]["total"] >= 3
    zone = (await client.get("/api/v1/zones/q5")).json()
    assert {"zone", "devices", "flood", "traffic", "cameras", "alerts"} <= set(zone)
    summary = (await client.get("/api/v1/summary")).json()
    assert {"devices", "flood", "traffic", "cameras", "alerts", "zones", "yesterday"} <= set(summary)
    assert summary["devices"]["total"] == sum(summary["devices"][s] for s in ("online", "offline", "stale", "unknown"))
    assert_error(await client.get("/api/v1/zones/atlantis"), 404, "not_found")


async def test_readings_from_rollups(client: httpx.AsyncClient) -> None:
    hour = NOW.replace(minute=0)
    params = {
        "metric": "water_level_cm",
        "from": (hour - timedelta(hours=20)).isoformat(),
        "to": hour.isoformat(),
        "bucket": "1h",
    }
    body = (await client.get(f"/api/v1/devices/{FLOOD}/readings", params=params)).json()
    assert body["source"] == "rollup_1m" and body["bucket"] == "1h"
    assert (body["from"], body["to"]) == (iso(hour - timedelta(hours=20)), iso(hour))
    assert len(body["points"]) == 20
    p = body["points"][0]
    assert p == {"t": p["t"], "avg": 10.0, "min": 9.0, "max": 11.0, "count": 360} and p["t"].endswith("Z")
    default = (await client.get(f"/api/v1/devices/{FLOOD}/readings", params={"metric": "water_level_cm"})).json()
    # The default window is the last 24 h at request time; the rollups end at NOW (set when the module was
    # collected, possibly minutes ago in a full run), so the window has slid past that many minutes.
    slid = int((datetime.now(UTC) - NOW).total_seconds() // 60)
    assert default["bucket"] == "1m" and default["source"] == "rollup_1m"
    assert 1439 - slid - 1 <= len(default["points"]) <= 1440 - slid


async def test_rollup_readings_reach_the_last_reading(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """Minute buckets include the minutes not rolled up yet (the open one, dirty ones) from raw rows."""
    device = "T-API-TAIL"
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name) VALUES ($1, 'flood', $1) ON CONFLICT DO NOTHING", device
    )
    # As a writer does: rows and their minutes marked dirty in one transaction. Three minutes back is
    # already rolled up (a rollup row and no mark); two minutes back and the open minute are not.
    async with pool.acquire() as conn, conn.transaction():
        now = await conn.fetchval("SELECT date_trunc('second', now())")
        minute = now.replace(second=0)
        rows = [
            (minute - timedelta(minutes=3, seconds=-10), 4.0),
            (minute - timedelta(minutes=2, seconds=-10), 7.0),
            (minute - timedelta(minutes=2, seconds=-40), 9.0),
            (now, 12.0),
        ]
        await conn.executemany(
            "INSERT INTO measurements (time, device_id, metric, part, value) VALUES ($1, $2, 'water_level_cm', '', $3)",
            [(t, device, v) for t, v in rows],
        )
        await conn.execute(
            "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
            "VALUES ($1, $2, 'water_level_cm', '', 1, 4, 4, 4)",
            minute - timedelta(minutes=3),
            device,
        )
        await conn.executemany(
            "INSERT INTO rollup_dirty (bucket, worker_id) VALUES ($1, 'test') ON CONFLICT DO NOTHING",
            [(minute - timedelta(minutes=2),), (minute,)],
        )
    params = {
        "metric": "water_level_cm",
        "from": (minute - timedelta(minutes=10)).isoformat(),
        "to": (now + timedelta(seconds=1)).isoformat(),
        "bucket": "1m",
    }
    body = (await client.get(f"/api/v1/devices/{device}/readings", params=params)).json()
    assert body["source"] == "rollup_1m"
    points = {p["t"]: (p["avg"], p["count"]) for p in body["points"]}

    def key(t: datetime) -> str:
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert points == {
        key(minute - timedelta(minutes=3)): (4.0, 1),
        key(minute - timedelta(minutes=2)): (8.0, 2),
        key(minute): (12.0, 1),  # the open minute: the last reading is on the chart
    }


async def test_readings_raw_and_sub_minute(client: httpx.AsyncClient) -> None:
    base = {
        "metric": "water_level_cm",
        "from": (NOW - timedelta(minutes=10)).isoformat(),
        "to": NOW.isoformat(),
    }
    raw = (await client.get(f"/api/v1/devices/{FLOOD}/readings", params={**base, "bucket": "raw"})).json()
    assert raw["source"] == "raw" and len(raw["points"]) == 60 and raw["points"][0]["count"] == 1
    assert raw["points"][0]["avg"] == pytest.approx(110.0)
    buckets = (await client.get(f"/api/v1/devices/{FLOOD}/readings", params={**base, "bucket": "30s"})).json()
    assert buckets["source"] == "raw" and len(buckets["points"]) == 20
    assert buckets["points"][0]["count"] == 3 and buckets["points"][0]["min"] == pytest.approx(110.0)


async def test_readings_csv(client: httpx.AsyncClient) -> None:
    params = {
        "metric": "water_level_cm",
        "from": (NOW - timedelta(minutes=1)).isoformat(),
        "to": NOW.isoformat(),
        "bucket": "raw",
    }
    resp = await client.get(f"/api/v1/devices/{FLOOD}/readings.csv", params=params)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    lines = resp.text.strip().splitlines()
    assert lines[0] == "time,avg,min,max,count" and len(lines) == 7
    assert lines[1].split(",")[0].endswith("Z")


async def test_readings_errors(client: httpx.AsyncClient) -> None:
    url = f"/api/v1/devices/{FLOOD}/readings"
    week = {"from": (NOW - timedelta(days=8)).isoformat(), "to": NOW.isoformat()}
    assert_error(
        await client.get(url, params={"metric": "water_level_cm", **week, "bucket": "raw"}),
        400,
        "range_too_large",
    )
    assert_error(
        await client.get(url, params={"metric": "water_level_cm", **week, "bucket": "30s"}),
        400,
        "range_too_large",
    )
    years = {"from": (NOW - timedelta(days=500)).isoformat(), "to": NOW.isoformat()}
    assert_error(
        await client.get(url, params={"metric": "water_level_cm", **years, "bucket": "1d"}),
        400,
        "range_too_large",
    )
    assert_error(await client.get(url, params={"metric": "water_level_cm", "bucket": "7x"}), 400, "bad_request")
    assert_error(
        await client.get(
            url,
            params={
                "metric": "water_level_cm",
                "from": NOW.isoformat(),
                "to": (NOW - timedelta(hours=1)).isoformat(),
            },
        ),
        400,
        "bad_request",
    )
    assert_error(await client.get(url), 422, "validation_error")
    assert_error(await client.get(url, params={"metric": "x", "from": "yesterday"}), 422, "validation_error")
    assert_error(await client.get("/api/v1/devices/NOPE-1/readings", params={"metric": "x"}), 404, "not_found")


async def test_not_found_and_validation_shapes(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/devices/NOPE-1"), 404, "not_found")
    assert_error(await client.get("/api/v1/no-such-route"), 404, "not_found")
    assert_error(await client.get("/api/v1/devices", params={"limit": 1001}), 422, "validation_error")
    assert_error(await client.get("/api/v1/devices", params={"status": "sleepy"}), 422, "validation_error")
    assert_error(await client.get("/api/v1/alerts", params={"state": "lost"}), 422, "validation_error")
    assert_error(await client.get("/api/v1/alerts/999999999"), 404, "not_found")
    assert_error(await client.post("/api/v1/alerts/999999999/acknowledge", json={"note": "x"}), 404, "not_found")


async def test_snapshot_events_and_quarantine(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"/api/v1/devices/{CAMERA}/snapshot")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg" and resp.content == JPEG
    assert_error(await client.get(f"/api/v1/devices/{FLOOD}/snapshot"), 404, "not_found")
    events = (await client.get("/api/v1/events", params={"zone": "q5", "type": "traffic.accident"})).json()["items"]
    assert events and events[0]["device_id"] == CAMERA and events[0]["attrs"] == {"lane": 2}
    assert events[0]["snapshot_url"] == f"/api/v1/devices/{CAMERA}/snapshot" and events[0]["zone"] == "q5"
    items = (await client.get("/api/v1/quarantine", params={"reason": "test_reason"})).json()["items"]
    assert (
        items and items[0]["payload_text"] == "\\xff\\x00not json" and items[0]["payload_base64"] == "/wBub3QganNvbg=="
    )


async def test_alert_acknowledge_and_resolve(
    client: httpx.AsyncClient, pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    # The audit rows after this id are this test's: the session's log is shared, and other modules write rows
    # for alert ids of their own (tests/test_security_http.py's stand-in route audits alerts 1 and 7).
    since = await pool.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    alert_id = await pool.fetchval(
        "INSERT INTO alerts (rule, device_id, zone, severity, state, title) "
        "VALUES ('manual_test', $1, 'q5', 'warning', 'open', 'test') RETURNING id",
        TRAFFIC,
    )
    ack = await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "on it"})
    assert ack.status_code == 200, ack.text
    body = ack.json()
    assert body["state"] == "acknowledged" and body["acknowledged_by"] == people["admin"] and body["note"] == "on it"
    listed = (await client.get("/api/v1/alerts", params={"state": "active", "zone": "q5"})).json()["items"]
    assert alert_id in [a["id"] for a in listed]
    done = (await client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "cleared"})).json()
    assert done["state"] == "resolved" and done["resolved_at"]
    assert_error(await client.post(f"/api/v1/alerts/{alert_id}/acknowledge"), 409, "conflict")
    detail = (await client.get(f"/api/v1/alerts/{alert_id}")).json()
    assert [h["to_state"] for h in detail["history"]] == ["acknowledged", "resolved"]
    assert detail["history"][0]["note"] == "on it"
    audited = await pool.fetch(
        "SELECT action, outcome, actor, source FROM audit_log WHERE id > $1 AND target = $2 AND action LIKE 'alert.%' "
        "ORDER BY id",
        since,
        str(alert_id),
    )
    assert [(r["action"], r["outcome"]) for r in audited] == [
        ("alert.acknowledge", "success"),
        ("alert.resolve", "success"),
        ("alert.acknowledge", "failure"),
    ]
    assert {r["actor"] for r in audited} == {people["admin"]} and {r["source"] for r in audited} == {"127.0.0.1"}


async def test_openapi_and_metrics(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/devices/{device_id}/readings" in spec["paths"]
    text = (await client.get("/metrics")).text
    assert "ioc_http_request_seconds" in text and "ioc_ws_clients" in text
    assert json.loads(json.dumps(spec))  # plain JSON


def _dependency_calls(dependant: Any) -> set[Any]:
    """Every dependency callable a route resolves, however deep."""
    calls: set[Any] = set()
    for sub in dependant.dependencies:
        calls.add(sub.call)
        calls |= _dependency_calls(sub)
    return calls


def test_readings_do_not_wait_for_the_live_hub() -> None:
    """History comes from the database alone: no readings route depends on the hub (which, while it loads,
    made them wait up to 30 s and then answer 503, only to read whether TimescaleDB is installed)."""
    from dashboards.api import devices, summary
    from dashboards.api.deps import get_hub

    routes = {r.path: r for r in [*devices.router.routes, *summary.router.routes]}  # type: ignore[attr-defined]
    for path in ("/devices/{device_id}/readings", "/devices/{device_id}/readings.csv"):
        assert get_hub not in _dependency_calls(routes[path].dependant), path
    assert get_hub in _dependency_calls(routes["/summary"].dependant)

"""Incidents end to end: MQTT readings -> alerts -> grouped incidents (the alert engine's round), and the REST API
of a real ``ioc serve``: the state machine, procedures, optimistic concurrency, audit, nearby devices."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dashboards.alerts.engine import AlertEngine
from incidents import store
from incidents.geo import haversine_m
from incidents.procedures import parse
from ioc.settings import Settings
from tests.support.auth import signed_in
from tests.support.stack import Broker, mosquitto_pub, serving

# A place of our own, ~35 km from the demo fleet, so nothing else is near it.
LAT, LON = 10.95, 106.95
M_LAT = 1 / 111_195.0  # degrees of latitude per metre
ZONE = "t_inc"
FLOOD_A, FLOOD_B, FLOOD_FAR = "T-INC-FL-A", "T-INC-FL-B", "T-INC-FL-FAR"
CAM_NEAR, CAM_FAR, TRAFFIC = "T-INC-CAM-1", "T-INC-CAM-2", "T-INC-TR-1"
RULES = """
version: 1
evaluate_every_s: 0.5
rules:
  - id: t_inc_flood
    type: threshold
    kind: flood
    metric: water_level_cm
    warning: 100000          # only devices with the metadata below alert
    critical: 200000
    warning_from: t_inc_warning_cm
    critical_from: t_inc_danger_cm
    for_s: 0
    clear_delay_s: 600
"""
SOP = """
type: t_flood
version: 3
name: {vi: Ngập thử, en: Test flood}
grouping: {rules: [t_inc_flood], radius_m: 400, window_min: 10}
steps:
  - {id: look, text: {vi: Xem camera, en: Look at the cameras}}
  - {id: pumps, when: critical, text: {vi: Chạy trạm bơm, en: Start the pumps}}
  - {id: tell, required: false, text: {vi: Báo dân, en: Tell residents}}
"""


SLOW_SOP = """
type: t_slow
version: 1
name: {vi: Chậm, en: Slow}
limits: {acknowledge_min: {critical: 0.02}, resolve_min: {critical: 0.05}}
steps:
  - {id: look, text: {vi: Xem, en: Look}}
"""


@pytest.fixture(scope="module")
async def places(pool: asyncpg.Pool) -> dict[str, tuple[float, float]]:
    """Our zone and devices: flood A, flood B 150 m north of A, one 2 km north; cameras and a detector around A."""
    where = {
        FLOOD_A: (LAT, LON),
        FLOOD_B: (LAT + 150 * M_LAT, LON),
        FLOOD_FAR: (LAT + 2000 * M_LAT, LON),
        CAM_NEAR: (LAT, LON + 100 * M_LAT / 0.98),  # ~100 m east
        TRAFFIC: (LAT - 300 * M_LAT, LON),  # 300 m south
        CAM_FAR: (LAT - 700 * M_LAT, LON),  # outside 500 m
    }
    kinds = {FLOOD_A: "flood", FLOOD_B: "flood", FLOOD_FAR: "flood", CAM_NEAR: "camera", CAM_FAR: "camera"}
    meta = {"t_inc_warning_cm": 20, "t_inc_danger_cm": 30}
    await pool.execute(
        "INSERT INTO zones (zone_id, name, lat, lon) VALUES ($1, 'Test incidents', $2, $3) ON CONFLICT DO NOTHING",
        ZONE,
        LAT,
        LON,
    )
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone, lat, lon, metadata) VALUES ($1, $2, $1, $3, $4, $5, $6) "
        "ON CONFLICT (device_id) DO UPDATE SET lat = EXCLUDED.lat, lon = EXCLUDED.lon, metadata = EXCLUDED.metadata",
        [
            (d, kinds.get(d, "traffic"), ZONE, lat, lon, meta if kinds.get(d) == "flood" else {})
            for d, (lat, lon) in where.items()
        ],
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")
    return where


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The test rules file and procedures folder."""
    root = Path(tmp_path_factory.mktemp("incidents"))
    (root / "rules.yaml").write_text(RULES)
    (root / "sop").mkdir()
    (root / "sop" / "t_flood.yaml").write_text(SOP, encoding="utf-8")
    (root / "sop" / "t_slow.yaml").write_text(SLOW_SOP, encoding="utf-8")
    return root / "rules.yaml", root / "sop"


@pytest.fixture(scope="module")
def server(run_ioc: Any, places: Any) -> Iterator[str]:
    """One ``ioc serve`` with the repository's procedures (sop/); its base URL."""
    with serving(run_ioc, "serve-incidents") as base:
        yield base


async def publish_level(pool: asyncpg.Pool, broker: Broker, device_id: str, level: float) -> None:
    """A water level reading now, sent again each second (as a device does) until the ingest has stored it:
    the ingest learns of our new devices asynchronously."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        sent = datetime.now(UTC)
        payload = {"ts": sent.isoformat(), "metrics": {"water_level_cm": level}}
        mosquitto_pub(broker, f"ioc/v1/flood/{device_id}/telemetry", json.dumps(payload).encode())
        for _ in range(10):
            stored = await pool.fetchval(
                "SELECT value FROM latest_values WHERE device_id = $1 AND metric = 'water_level_cm' AND time >= $2",
                device_id,
                sent.replace(microsecond=(sent.microsecond // 1000) * 1000),
            )
            if stored == level:
                return
            await asyncio.sleep(0.1)
    pytest.fail(f"the reading of {device_id} was not stored within 15 s")


async def until(check: Any, what: str, timeout: float = 15.0) -> Any:
    """Await ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


async def incident_of(pool: asyncpg.Pool, device_id: str) -> asyncpg.Record | None:
    """The incident holding the active alert of our rule on ``device_id``."""
    return await pool.fetchrow(
        "SELECT i.* FROM incidents i JOIN incident_alerts ia ON ia.incident_id = i.id "
        "JOIN alerts a ON a.id = ia.alert_id WHERE a.rule = 't_inc_flood' AND a.device_id = $1 "
        "AND a.state <> 'resolved'",
        device_id,
    )


@pytest.mark.usefixtures("ingest")
async def test_alerts_group_into_incidents_by_place_and_escalate_them(
    pool: asyncpg.Pool, database_url: str, broker: Broker, files: tuple[Path, Path], places: Any
) -> None:
    rules, sop = files
    settings = Settings(database_url=database_url, alert_rules_file=rules, sop_dir=sop, environment="test")
    engine = AlertEngine(pool, database_url, settings)  # its rounds, driven here: leadership is another test's

    async def round_until(check: Any, what: str) -> Any:
        async def step() -> Any:
            await engine.evaluate()
            return await check()

        return await until(step, what)

    await publish_level(pool, broker, FLOOD_A, 24.0)
    first = await round_until(lambda: incident_of(pool, FLOOD_A), "an incident for A's alert")
    assert (first["type"], first["severity"], first["state"], first["origin"]) == (
        "t_flood",
        "warning",
        "new",
        "alerts",
    )
    assert (first["lat"], first["lon"], first["zone"]) == (LAT, LON, ZONE)
    assert first["procedure"]["version"] == 3 and first["created_by"] == "engine"

    await publish_level(pool, broker, FLOOD_B, 25.0)  # 150 m away, within 400 m and 10 minutes: joins
    joined = await round_until(lambda: incident_of(pool, FLOOD_B), "B's alert grouped")
    assert joined["id"] == first["id"]
    await publish_level(pool, broker, FLOOD_FAR, 26.0)  # 2 km away: an incident of its own
    far = await round_until(lambda: incident_of(pool, FLOOD_FAR), "the far alert grouped")
    assert far["id"] != first["id"]

    await publish_level(pool, broker, FLOOD_A, 35.0)  # A's alert escalates: its incident follows
    raised = await round_until(
        lambda: pool.fetchrow("SELECT * FROM incidents WHERE id = $1 AND severity = 'critical'", first["id"]),
        "the incident raised to critical",
    )
    assert raised["version"] == first["version"] + 1 and raised["updated_by"] == "engine"
    kinds = [
        (r["kind"], r["detail"].get("device_id") or r["detail"].get("to"))
        for r in await pool.fetch(
            "SELECT kind, detail FROM incident_events WHERE incident_id = $1 ORDER BY id", first["id"]
        )
    ]
    assert kinds == [("created", None), ("alert", FLOOD_A), ("alert", FLOOD_B), ("severity", "critical")]
    audited = await pool.fetch(
        "SELECT action, actor FROM audit_log WHERE target = $1 AND action LIKE 'incident.%' ORDER BY id",
        str(first["id"]),
    )
    assert [(a["action"], a["actor"]) for a in audited] == [
        ("incident.create", "engine"),
        ("incident.alert_joined", "engine"),
        ("incident.alert_joined", "engine"),
        ("incident.severity", "engine"),
    ]
    await engine.evaluate()  # another round changes nothing
    assert (await pool.fetchval("SELECT version FROM incidents WHERE id = $1", first["id"])) == raised["version"]
    count = await pool.fetchval(
        "SELECT count(*) FROM incident_alerts ia JOIN alerts a ON a.id = ia.alert_id WHERE a.rule = 't_inc_flood'"
    )
    assert count == 3


async def _report(http: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"type": "report", "title": "Cây đổ / fallen tree", "lat": LAT, "lon": LON, **extra}
    resp = await http.post("/api/v1/incidents", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_operator_workflow_from_report_to_closed(server: str, people: dict[str, str], pool: asyncpg.Pool) -> None:
    async with signed_in(server, people["operator"]) as op, signed_in(server, people["viewer"]) as viewer:
        incident = await _report(op, note="called by a resident")
        iid, v = incident["id"], incident["version"]
        assert (incident["state"], incident["severity"], incident["origin"], incident["zone"]) == (
            "new",
            "warning",
            "operator",
            ZONE,  # the nearest zone to where it was placed
        )
        assert [s["id"] for s in incident["checklist"]] == ["record_caller", "verify_cameras", "forward_agency"]
        assert incident["missing_required"] == ["record_caller", "forward_agency"]

        assert (await viewer.get(f"/api/v1/incidents/{iid}")).status_code == 200  # viewers read
        refused = await viewer.post(f"/api/v1/incidents/{iid}/take", json={"version": v})
        assert refused.status_code == 403  # and do not act

        taken = (await op.post(f"/api/v1/incidents/{iid}/take", json={"version": v})).json()
        assert (taken["state"], taken["assignee"], taken["version"]) == ("assigned", people["operator"], v + 1)
        assert taken["acknowledged_at"]
        stale = await op.post(f"/api/v1/incidents/{iid}/start", json={"version": v})
        assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
        started = (await op.post(f"/api/v1/incidents/{iid}/start", json={"version": v + 1})).json()
        assert started["state"] == "in_progress"

        blocked = await op.post(f"/api/v1/incidents/{iid}/resolve", json={"version": started["version"]})
        assert blocked.status_code == 409
        assert "record_caller, forward_agency" in blocked.json()["error"]["message"]
        ticked = (await op.post(f"/api/v1/incidents/{iid}/steps/record_caller", json={"note": "0909 000 000"})).json()
        done = next(s for s in ticked["checklist"] if s["id"] == "record_caller")
        assert done["done_by"] == people["operator"] and done["done_at"] and done["note"] == "0909 000 000"
        again = await op.post(f"/api/v1/incidents/{iid}/steps/record_caller", json={})
        assert again.status_code == 409 and "already done by" in again.json()["error"]["message"]
        unknown = await op.post(f"/api/v1/incidents/{iid}/steps/no_such_step", json={})
        assert unknown.status_code == 422
        await op.post(f"/api/v1/incidents/{iid}/notes", json={"text": "tree crew on the way"})
        overridden = await op.post(
            f"/api/v1/incidents/{iid}/resolve",
            json={"version": ticked["version"], "note": "cleared", "override_reason": "agency closed for the night"},
        )
        assert overridden.status_code == 200, overridden.text
        resolved = overridden.json()
        assert resolved["state"] == "resolved" and resolved["resolved_at"]
        closed = (await op.post(f"/api/v1/incidents/{iid}/close", json={"version": resolved["version"]})).json()
        assert closed["state"] == "closed" and closed["closed_at"]
        reopened = (
            await op.post(
                f"/api/v1/incidents/{iid}/reopen", json={"version": closed["version"], "reason": "called back"}
            )
        ).json()
        assert reopened["state"] == "assigned" and reopened["closed_at"] is None
        raised = (
            await op.post(
                f"/api/v1/incidents/{iid}/severity",
                json={"version": reopened["version"], "severity": "critical", "reason": "blocks an ambulance route"},
            )
        ).json()
        assert raised["severity"] == "critical"

    timeline = [(e["kind"], e.get("to") or e.get("step") or e.get("text")) for e in raised["timeline"]]
    assert timeline == [
        ("created", None),
        ("assign", people["operator"]),
        ("state", "assigned"),
        ("state", "in_progress"),
        ("step", "record_caller"),
        ("note", "tree crew on the way"),
        ("state", "resolved"),
        ("state", "closed"),
        ("state", "assigned"),
        ("severity", "critical"),
    ]
    resolved_entry = raised["timeline"][6]
    assert resolved_entry["override"] == "agency closed for the night" and resolved_entry["skipped"] == [
        "forward_agency"
    ]
    audited = await pool.fetch(
        "SELECT action, outcome FROM audit_log WHERE target = $1 AND action LIKE 'incident.%' ORDER BY id", str(iid)
    )
    assert [(a["action"], a["outcome"]) for a in audited] == [
        ("incident.create", "success"),
        ("incident.take", "success"),
        ("incident.start", "failure"),  # the stale version
        ("incident.start", "success"),
        ("incident.resolve", "failure"),  # required steps
        ("incident.step", "success"),
        ("incident.step", "failure"),
        ("incident.step", "failure"),
        ("incident.note", "success"),
        ("incident.resolve", "success"),
        ("incident.close", "success"),
        ("incident.reopen", "success"),
        ("incident.severity", "success"),
    ]


async def test_two_operators_at_once_one_wins_the_other_is_told(server: str, people: dict[str, str]) -> None:
    operator, admin = people["operator"], people["admin"]
    async with signed_in(server, operator) as first, signed_in(server, admin) as second:
        incident = await _report(first)
        iid = incident["id"]
        for _ in range(6):  # each round both act on the version they both read, at the same moment
            current = (await first.get(f"/api/v1/incidents/{iid}")).json()
            v = current["version"]
            severity = "warning" if current["severity"] == "critical" else "critical"
            assignee = admin if current["assignee"] == operator else operator
            a, b = await asyncio.gather(
                first.post(
                    f"/api/v1/incidents/{iid}/severity",
                    json={"version": v, "severity": severity, "reason": "seen on camera"},
                ),
                second.post(f"/api/v1/incidents/{iid}/assign", json={"version": v, "assignee": assignee}),
            )
            assert sorted([a.status_code, b.status_code]) == [200, 409], (a.text, b.text)
            winner, loser, who = (a, b, operator) if a.status_code == 200 else (b, a, admin)
            error = loser.json()["error"]
            assert error["code"] == "version_conflict"
            assert f"changed by {who}" in error["message"] and f"you had version {v}" in error["message"]
            after = (await first.get(f"/api/v1/incidents/{iid}")).json()
            assert after["version"] == v + 1 == winner.json()["version"]  # one change, the loser's not written
            assert (after["severity"] == severity) != (after["assignee"] == assignee)
        kinds = [e["kind"] for e in after["timeline"] if e["kind"] in ("severity", "assign")]
        assert len(kinds) == 6  # six rounds, six changes: none lost, none doubled


async def test_nearby_devices_nearest_first_with_direction(
    server: str, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "INSERT INTO latest_values (device_id, metric, time, value) VALUES ($1, 'water_level_cm', now(), 12.5) "
        "ON CONFLICT (device_id, metric, part) DO UPDATE SET value = 12.5, time = now()",
        FLOOD_A,
    )
    async with signed_in(server, people["viewer"]) as viewer, signed_in(server, people["operator"]) as op:
        incident = await _report(op)
        near = (await viewer.get(f"/api/v1/incidents/{incident['id']}/nearby")).json()
        ids = [d["device_id"] for d in near["items"] if d["device_id"].startswith("T-INC-")]
        assert ids == [FLOOD_A, CAM_NEAR, FLOOD_B, TRAFFIC], near  # FLOOD_FAR (2 km) and CAM_FAR (700 m) are out
        by_id = {d["device_id"]: d for d in near["items"]}
        assert by_id[FLOOD_A]["distance_m"] == 0 and by_id[FLOOD_A]["latest"]["water_level_cm"]["value"] == 12.5
        assert abs(by_id[CAM_NEAR]["distance_m"] - 100) < 2 and by_id[CAM_NEAR]["direction"] == "E"
        assert "snapshot_at" in by_id[CAM_NEAR]
        assert abs(by_id[TRAFFIC]["bearing_deg"] - 180) < 0.5 and by_id[TRAFFIC]["direction"] == "S"
        wide = (await viewer.get(f"/api/v1/incidents/{incident['id']}/nearby", params={"radius_m": 800})).json()
        assert CAM_FAR in [d["device_id"] for d in wide["items"]]
        distances = [d["distance_m"] for d in wide["items"]]
        assert distances == sorted(distances)
        for d in wide["items"]:
            exact = haversine_m(LAT, LON, d["lat"], d["lon"])
            assert abs(exact - d["distance_m"]) < 0.2
        bad = await viewer.get(f"/api/v1/incidents/{incident['id']}/nearby", params={"radius_m": -1})
        assert bad.status_code == 422


async def test_bad_input_is_refused_with_a_reason(server: str, people: dict[str, str]) -> None:
    async with signed_in(server, people["operator"]) as op:
        unknown = await op.post("/api/v1/incidents", json={"type": "meteor", "title": "x", "lat": LAT, "lon": LON})
        assert unknown.status_code == 422 and "unknown incident type 'meteor'" in unknown.json()["error"]["message"]
        off_earth = await op.post("/api/v1/incidents", json={"type": "report", "title": "x", "lat": 91, "lon": LON})
        assert off_earth.status_code == 422
        assert (await op.get("/api/v1/incidents/999999999")).status_code == 404
        incident = await _report(op)
        nobody = await op.post(
            f"/api/v1/incidents/{incident['id']}/assign",
            json={"version": incident["version"], "assignee": "nobody-here"},
        )
        assert nobody.status_code == 422 and "not an active operator" in nobody.json()["error"]["message"]
        closing_open = await op.post(f"/api/v1/incidents/{incident['id']}/close", json={"version": incident["version"]})
        assert closing_open.status_code == 409 and "is new: cannot close" in closing_open.json()["error"]["message"]
        listed = (await op.get("/api/v1/incidents", params={"type": "report"})).json()["items"]
        assert incident["id"] in [i["id"] for i in listed]
        types = [p["type"] for p in (await op.get("/api/v1/procedures")).json()["items"]]
        assert {"flood", "traffic", "public_order", "report"} <= set(types)


async def test_time_limits_escalate_once_each(
    pool: asyncpg.Pool, database_url: str, files: tuple[Path, Path], people: dict[str, str]
) -> None:
    rules, sop = files
    engine = AlertEngine(pool, database_url, Settings(database_url=database_url, alert_rules_file=rules, sop_dir=sop))
    slow = parse(SLOW_SOP)  # critical: acknowledge within 1.2 s, resolve within 3 s
    async with pool.acquire() as conn:
        place = {"severity": "critical", "lat": LAT, "lon": LON, "zone": ZONE, "actor": "tests", "origin": "operator"}
        late = await store.create(conn, slow, title="nobody takes it", **place)
        prompt = await store.create(conn, slow, title="taken at once", **place)
        await store.assign(conn, prompt, 1, people["operator"], people["operator"])

    async def escalations() -> dict[int, list[str]]:
        await engine.evaluate()
        rows = await pool.fetch(
            "SELECT incident_id, detail ->> 'limit' AS limit FROM incident_events "
            "WHERE kind = 'escalation' AND incident_id = ANY($1::bigint[]) ORDER BY id",
            [late, prompt],
        )
        found: dict[int, list[str]] = {late: [], prompt: []}
        for r in rows:
            found[r["incident_id"]].append(r["limit"])
        return found

    both = await until(
        lambda: _when(escalations(), lambda f: len(f[late]) == 2 and f[prompt]), "both limits passed", timeout=30
    )
    assert both == {late: ["acknowledge", "resolve"], prompt: ["resolve"]}  # the prompt one was acknowledged in time
    assert await escalations() == both  # once each, however many rounds follow
    audited = await pool.fetch(
        "SELECT target, detail FROM audit_log WHERE action = 'incident.escalate' AND actor = 'engine' "
        "AND target = ANY($1::text[]) ORDER BY id",
        [str(late), str(prompt)],
    )
    assert [(a["target"], a["detail"]["limit"]) for a in audited] == [
        (str(late), "acknowledge"),
        (str(late), "resolve"),
        (str(prompt), "resolve"),
    ]
    async with pool.acquire() as conn:
        listed = {
            i["id"]: i
            for i in await store.list_incidents(conn, states=store.OPEN_STATES, incident_type="t_slow", limit=10)
        }
        detail = await store.get(conn, late)
    assert sorted(listed[late]["escalations"]) == ["acknowledge", "resolve"] and listed[prompt]["escalations"] == [
        "resolve"
    ]
    assert [e["limit"] for e in detail["timeline"] if e["kind"] == "escalation"] == ["acknowledge", "resolve"]


async def _when(value: Any, test: Any) -> Any:
    """``await value``, returned when ``test`` accepts it, else None."""
    result = await value
    return result if test(result) else None


async def test_handover_reports_what_the_shift_did(server: str, people: dict[str, str], pool: asyncpg.Pool) -> None:
    start = await pool.fetchval("SELECT now()")
    async with signed_in(server, people["operator"]) as op:
        incident = await _report(op)
        iid = incident["id"]
        taken = (await op.post(f"/api/v1/incidents/{iid}/take", json={"version": incident["version"]})).json()
        for step in ("record_caller", "forward_agency"):
            await op.post(f"/api/v1/incidents/{iid}/steps/{step}", json={})
        resolved = (await op.post(f"/api/v1/incidents/{iid}/resolve", json={"version": taken["version"]})).json()
        closed = (await op.post(f"/api/v1/incidents/{iid}/close", json={"version": resolved["version"]})).json()
        still_open = await _report(op)
        end = await pool.fetchval("SELECT now() + interval '1 second'")
        report = (await op.get("/api/v1/handover", params={"from": start.isoformat(), "to": end.isoformat()})).json()
        earlier = (await op.get("/api/v1/handover", params={"to": start.isoformat()})).json()
        bad = await op.get("/api/v1/handover", params={"from": end.isoformat(), "to": start.isoformat()})
    worked = {i["id"]: i for i in report["worked"]}
    row = worked[iid]
    for key in ("created_at", "acknowledged_at", "resolved_at", "closed_at"):
        assert row[key] == closed[key] and row[key] is not None, key
    assert row["state"] == "closed" and row["steps_done"] == 2
    assert still_open["id"] in [i["id"] for i in report["open"]] and iid not in [i["id"] for i in report["open"]]
    kinds = [e["kind"] for e in report["events"] if e["incident_id"] == iid]
    assert kinds == ["created", "assign", "state", "step", "step", "state", "state"]
    assert report["kpis"]["incidents"] >= 2 and report["kpis"]["resolved"] >= 1
    assert report["kpis"]["mean_acknowledge_s"] is not None and report["kpis"]["mean_resolve_s"] > 0
    assert iid not in [i["id"] for i in earlier["worked"]]  # the shift before saw none of it
    assert bad.status_code == 400

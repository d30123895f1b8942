"""Incidents through the REST API of a real ``ioc serve``: the state machine, procedures, optimistic concurrency,
audit, nearby devices, the shift handover."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from incidents import nearby
from incidents.geo import haversine_m
from tests.support.auth import signed_in
from tests.support.incidents import CAM_FAR, CAM_NEAR, FLOOD_A, FLOOD_B, LAT, LON, TRAFFIC, ZONE
from tests.support.stack import serving


@pytest.fixture(scope="module")
def server(run_ioc: Any, places: Any) -> Iterator[str]:
    """One ``ioc serve`` with the repository's procedures (sop/); its base URL."""
    with serving(run_ioc, "serve-incidents") as base:
        yield base


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


async def test_nearby_sensors_carry_their_current_forecast(places: Any, pool: asyncpg.Pool) -> None:
    """The console shows a nearby sensor's forecast beside its reading: the forecast job's latest round, per metric,
    shortest horizon first; a device without forecasts has none. (In a transaction rolled back at the end, so the
    server's own forecast job, which replaces every forecast each round, neither sees nor removes these rows.)"""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("DELETE FROM forecasts WHERE device_id = ANY($1::text[])", [FLOOD_A, TRAFFIC])
            await conn.executemany(
                "INSERT INTO forecasts (device_id, metric, horizon_min, origin, value, lower, upper, method) "
                "VALUES ($1, 'water_level_cm', $2, now(), $3::float8, $3::float8 - 5, $3::float8 + 5, 'model')",
                [(FLOOD_A, 60, 31.5), (FLOOD_A, 30, 20.0)],
            )
            found = await nearby.with_readings(conn, await nearby.nearby_devices(conn, LAT, LON))
        finally:
            await transaction.rollback()
    by_id = {d["device_id"]: d for d in found}
    ahead = by_id[FLOOD_A]["forecast"]["water_level_cm"]
    assert [(f["horizon_min"], f["value"], f["upper"]) for f in ahead] == [(30, 20.0, 25.0), (60, 31.5, 36.5)]
    assert by_id[TRAFFIC]["forecast"] == {}


async def test_bad_input_is_refused_with_a_reason(server: str, people: dict[str, str]) -> None:
    async with signed_in(server, people["operator"]) as op, signed_in(server, people["supervisor"]) as sup:
        unknown = await op.post("/api/v1/incidents", json={"type": "meteor", "title": "x", "lat": LAT, "lon": LON})
        assert unknown.status_code == 422 and "unknown incident type 'meteor'" in unknown.json()["error"]["message"]
        off_earth = await op.post("/api/v1/incidents", json={"type": "report", "title": "x", "lat": 91, "lon": LON})
        assert off_earth.status_code == 422
        assert (await op.get("/api/v1/incidents/999999999")).status_code == 404
        incident = await _report(op)
        nobody = await sup.post(
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

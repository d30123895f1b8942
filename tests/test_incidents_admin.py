"""Incident administration through a real ``ioc serve``: the supervisor role (reassign, override, escalations on
the live ``incidents`` channel), procedure editions saved through the API, and the live board."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from incidents import escalation
from ioc import accounts
from tests.support.auth import PASSWORD, signed_in
from tests.support.incidents import LAT, LON, ZONE
from tests.support.live import LiveClient, login
from tests.support.stack import serving, until

EDITABLE = """
type: t_edit
version: 2
name: {vi: Sửa thử, en: Edit test}
steps:
  - {id: look, text: {vi: Xem camera, en: Look at the cameras}}
  - {id: call, required: false, text: {vi: Gọi điện, en: Phone}}
"""
HELD = """
type: t_hold
version: 1
name: {vi: Giữ thử, en: Hold test}
steps:
  - {id: look, text: {vi: Xem camera, en: Look at the cameras}}
  - {id: call, required: false, text: {vi: Gọi điện, en: Phone}}
"""
ESCALATED = "SELECT 1 FROM incident_events WHERE incident_id = $1 AND kind = 'escalation'"
HURRIED = """
type: t_hurry
version: 1
name: {vi: Gấp, en: Hurried}
limits: {acknowledge_min: {critical: 0.01}}
steps:
  - {id: look, text: {vi: Xem, en: Look}}
"""


@pytest.fixture(scope="module")
def sop_dir(module_scratch_dir: Any) -> Path:
    """This module's procedures: types no other module uses, and one per test, so the edition saved by the edit
    test changes no other test's checklist (in any order)."""
    folder = module_scratch_dir("ioc-test-sop-") / "sop"
    folder.mkdir()
    for name, text in (("t_edit", EDITABLE), ("t_hurry", HURRIED), ("t_hold", HELD)):
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def server(run_ioc: Any, places: Any, sop_dir: Path) -> Iterator[str]:
    """One ``ioc serve`` with this module's procedures."""
    with serving(run_ioc, "serve-incidents-admin", env={"IOC_SOP_DIR": str(sop_dir)}) as base:
        yield base


@pytest.fixture(scope="module")
async def second_operator(pool: asyncpg.Pool) -> str:
    """Another operator, to hold incidents the first cannot take away."""
    async with pool.acquire() as conn:
        await accounts.create_user(conn, "t-admin-op2", "operator", PASSWORD, actor="tests", source="local")
    return "t-admin-op2"


async def _create(http: Any, incident_type: str = "t_edit", severity: str = "warning") -> dict[str, Any]:
    body = {"type": incident_type, "title": "Sự cố thử / test", "lat": LAT, "lon": LON, "severity": severity}
    resp = await http.post("/api/v1/incidents", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_only_a_supervisor_reassigns_and_overrides_for_others(
    server: str, people: dict[str, str], second_operator: str
) -> None:
    op, sup = people["operator"], people["supervisor"]
    async with (
        signed_in(server, op) as first,
        signed_in(server, second_operator) as second,
        signed_in(server, sup) as supervisor,
    ):
        incident = await _create(first, "t_hold")
        iid = incident["id"]
        held = (await second.post(f"/api/v1/incidents/{iid}/take", json={"version": incident["version"]})).json()
        taken_away = await first.post(f"/api/v1/incidents/{iid}/take", json={"version": held["version"]})
        assert taken_away.status_code == 403, taken_away.text
        assert f"held by {second_operator}: only a supervisor" in taken_away.json()["error"]["message"]
        overridden = await first.post(
            f"/api/v1/incidents/{iid}/resolve", json={"version": held["version"], "override_reason": "not mine"}
        )
        assert overridden.status_code == 403 and "or a supervisor may override" in overridden.text

        moved = await supervisor.post(
            f"/api/v1/incidents/{iid}/assign", json={"version": held["version"], "assignee": op}
        )
        assert moved.status_code == 200 and moved.json()["assignee"] == op
        moved_again = await supervisor.post(
            f"/api/v1/incidents/{iid}/assign", json={"version": moved.json()["version"], "assignee": second_operator}
        )
        resolved = await supervisor.post(
            f"/api/v1/incidents/{iid}/resolve",
            json={"version": moved_again.json()["version"], "override_reason": "crew confirmed by phone"},
        )
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["timeline"][-1]["skipped"] == ["look"]


async def test_a_supervisor_assigns_to_a_named_operator_an_operator_only_takes(
    server: str, people: dict[str, str], second_operator: str, pool: asyncpg.Pool
) -> None:
    op, sup = people["operator"], people["supervisor"]
    async with (
        signed_in(server, op) as first,
        signed_in(server, sup) as supervisor,
        signed_in(server, people["viewer"]) as viewer,
    ):
        offered = (await first.get("/api/v1/assignees")).json()
        names = {u["name"]: u["role"] for u in offered["items"]}
        assert names[op] == "operator" and names[second_operator] == "operator" and names[sup] == "supervisor"
        assert people["viewer"] not in names and offered["can_assign"] is False
        assert (await supervisor.get("/api/v1/assignees")).json()["can_assign"] is True
        assert (await viewer.get("/api/v1/assignees")).status_code == 403

        incident = await _create(first, "t_hold")
        iid = incident["id"]
        given = await first.post(
            f"/api/v1/incidents/{iid}/assign", json={"version": incident["version"], "assignee": second_operator}
        )
        assert given.status_code == 403, given.text
        assert "only a supervisor assigns" in given.json()["error"]["message"]
        assigned = await supervisor.post(
            f"/api/v1/incidents/{iid}/assign", json={"version": incident["version"], "assignee": second_operator}
        )
        assert assigned.status_code == 200, assigned.text
        body = assigned.json()
        assert body["assignee"] == second_operator and body["state"] == "assigned"
        entry = next(e for e in body["timeline"] if e["kind"] == "assign")
        assert (entry["actor"], entry["to"], entry["from"]) == (sup, second_operator, None)
    audited = await pool.fetch(
        "SELECT actor, outcome, detail FROM audit_log WHERE target = $1 AND action = 'incident.assign' ORDER BY id",
        str(iid),
    )
    assert [(a["actor"], a["outcome"], a["detail"]["assignee"]) for a in audited] == [
        (op, "failure", second_operator),
        (sup, "success", second_operator),
    ]


async def test_an_escalation_reaches_the_wall_addressed_to_supervisors(
    server: str, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    token = await login(server, people["viewer"], PASSWORD)
    url = server.replace("http://", "ws://") + "/ws/v1/live"
    async with LiveClient(url, token) as live, signed_in(server, people["operator"]) as op:
        await live.subscribe("incidents", "summary")
        incident = await _create(op, "t_hurry", "critical")
        iid = incident["id"]

        def listed(c: LiveClient) -> Any:
            return next((i for i in c.states["incidents"]["incidents"] if i["id"] == iid), None)

        shown = await live.wait_for(listed, 15, "the new incident on the board")
        assert (shown["severity"], shown["type"], shown["zone"]) == ("critical", "t_hurry", ZONE)
        assert shown["type_name"] == {"vi": "Gấp", "en": "Hurried"} and shown["lat"] == LAT
        zones = await live.wait_for(lambda c: c.states["summary"]["open_incidents"]["by_zone"], 10, "tablet counts")
        assert any(z["zone_id"] == ZONE and z["critical"] >= 1 for z in zones)

        async def escalated() -> bool:  # the engine's leader does this after each round; here at once
            async with pool.acquire() as conn:
                await escalation.escalate_overdue(conn)
                return bool(await conn.fetchval(ESCALATED, iid))

        await until(escalated, 15, 0.1, "the acknowledge limit (0.6 s) passed")
        key = f"{iid}:acknowledge"
        entry = await live.wait_for(
            lambda c: next((e for e in c.states["incidents"]["escalations"] if e["key"] == key), None), 15, "escalation"
        )
        assert entry["addressed_to"] == "supervisor" and entry["limit"] == "acknowledge" and entry["minutes"] == 0.01
        assert entry["due_at"] < entry["escalated_at"]  # how late: the wall counts from due_at
        assert listed(live)["escalated"] is True

        lowered = await op.post(
            f"/api/v1/incidents/{iid}/severity",
            json={"version": incident["version"], "severity": "warning", "reason": "smaller"},
        )
        await live.wait_for(lambda c: listed(c)["severity"] == "warning", 15, "severity change")
        taken = await op.post(f"/api/v1/incidents/{iid}/take", json={"version": lowered.json()["version"]})
        await live.wait_for(
            lambda c: all(e["key"] != key for e in c.states["incidents"]["escalations"]), 15, "escalation answered"
        )
        version = taken.json()["version"]
        await op.post(f"/api/v1/incidents/{iid}/resolve", json={"version": version, "override_reason": "test"})
        await live.wait_for(lambda c: listed(c) is None, 15, "resolved incident off the board")


async def test_admins_save_procedure_editions_that_new_incidents_follow(
    server: str, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    edition = {
        "base_version": 2,
        "steps": [
            {"id": "look", "text": {"vi": "Xem camera", "en": "Look at the cameras"}},
            {"id": "sandbags", "text": {"vi": "Đặt bao cát", "en": "Lay sandbags"}, "required": True},
        ],
        "limits": {"acknowledge_min": {"critical": 5}, "resolve_min": {"critical": 60, "warning": 120}},
    }
    async with signed_in(server, people["admin"]) as admin, signed_in(server, people["supervisor"]) as sup:
        before = await _create(sup)
        refused = await sup.put("/api/v1/procedures/t_edit", json=edition)
        assert refused.status_code == 403
        bad = {
            **edition,
            "steps": [{"id": "look", "text": {"vi": "Xem"}}, {"id": "look", "text": {"vi": "a", "en": "b"}}],
        }
        invalid = await admin.put("/api/v1/procedures/t_edit", json=bad)
        assert invalid.status_code == 422
        assert "steps.0.text.en: Field required" in invalid.json()["error"]["message"], invalid.text
        duplicate = await admin.put("/api/v1/procedures/t_edit", json={**edition, "steps": bad["steps"][1:] * 2})
        assert duplicate.status_code == 422 and "duplicate step ids: look" in duplicate.text
        zero_limit = {**edition, "limits": {"resolve_min": {"critical": 0}}}
        assert (await admin.put("/api/v1/procedures/t_edit", json=zero_limit)).status_code == 422

        saved = await admin.put("/api/v1/procedures/t_edit", json=edition)
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == 3 and saved.json()["name"] == {"vi": "Sửa thử", "en": "Edit test"}
        assert saved.json()["editions"][0]["created_by"] == people["admin"]
        stale = await admin.put("/api/v1/procedures/t_edit", json=edition)
        assert stale.status_code == 409 and "now version 3 (you edited version 2)" in stale.text

        after = await _create(sup)
        old = (await sup.get(f"/api/v1/incidents/{before['id']}")).json()
        assert [s["id"] for s in old["checklist"]] == ["look", "call"] and old["procedure"]["version"] == 2
        assert [s["id"] for s in after["checklist"]] == ["look", "sandbags"] and after["procedure"]["version"] == 3
        assert (await sup.get("/api/v1/procedures/t_edit")).json()["limits"]["resolve_min"] == {
            "critical": 60,
            "warning": 120,
        }
    audited = await pool.fetch(
        "SELECT actor, outcome, detail FROM audit_log WHERE action = 'procedure.edit' AND target = 't_edit' ORDER BY id"
    )
    assert [a["outcome"] for a in audited] == ["failure", "failure", "failure", "success", "failure"]
    assert audited[3]["detail"]["version"] == 3 and audited[3]["actor"] == people["admin"]

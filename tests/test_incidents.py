"""Incidents end to end: MQTT readings -> alerts -> grouped incidents (the alert engine's round), escalation by
time limits. The REST API of a real ``ioc serve`` is tests/test_incidents_api.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dashboards.alerts.engine import AlertEngine
from incidents import queries, store
from incidents.procedures import parse
from ioc.settings import Settings
from tests.support.incidents import FLOOD_A, FLOOD_B, FLOOD_FAR, LAT, LON, ZONE, publish_level
from tests.support.stack import Broker, until

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
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The test rules file and procedures folder."""
    root = Path(tmp_path_factory.mktemp("incidents"))
    (root / "rules.yaml").write_text(RULES)
    (root / "sop").mkdir()
    (root / "sop" / "t_flood.yaml").write_text(SOP, encoding="utf-8")
    (root / "sop" / "t_slow.yaml").write_text(SLOW_SOP, encoding="utf-8")
    return root / "rules.yaml", root / "sop"


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

        return await until(step, 15, 0.1, what)

    await publish_level(pool, broker, FLOOD_A, 24.0)
    first = await round_until(lambda: incident_of(pool, FLOOD_A), "an incident for A's alert")
    made = (first["type"], first["severity"], first["state"], first["origin"])
    assert made == ("t_flood", "warning", "new", "alerts")
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


async def _when(value: Any, test: Any) -> Any:
    """``await value``, returned when ``test`` accepts it, else None."""
    result = await value
    return result if test(result) else None


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
        lambda: _when(escalations(), lambda f: len(f[late]) == 2 and f[prompt]), 30, 0.1, "both limits passed"
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
            for i in await queries.list_incidents(conn, states=store.OPEN_STATES, incident_type="t_slow", limit=10)
        }
        detail = await queries.get(conn, late)
    assert sorted(listed[late]["escalations"]) == ["acknowledge", "resolve"] and listed[prompt]["escalations"] == [
        "resolve"
    ]
    assert [e["limit"] for e in detail["timeline"] if e["kind"] == "escalation"] == ["acknowledge", "resolve"]

"""An incident as the API shows it: the list of incidents, and one with its alerts, checklist and timeline."""

from __future__ import annotations

from typing import Any

import asyncpg

from incidents.errors import IncidentNotFound
from incidents.procedures import applicable_steps, missing_required
from incidents.store import INCIDENT_COLUMNS

# The time limits an incident passed (incidents.escalation), as a column of a query on incidents i.
ESCALATIONS = (
    "array(SELECT DISTINCT e.detail ->> 'limit' FROM incident_events e "
    "WHERE e.incident_id = i.id AND e.kind = 'escalation') AS escalations"
)


async def list_incidents(
    conn: asyncpg.Connection, *, states: tuple[str, ...], incident_type: str | None, limit: int
) -> list[dict[str, Any]]:
    """Incidents in ``states``, most severe first, then newest; with their alert count."""
    rows = await conn.fetch(
        f"SELECT {INCIDENT_COLUMNS}, (SELECT count(*) FROM incident_alerts ia WHERE ia.incident_id = i.id) AS alerts, "
        f"{ESCALATIONS} FROM incidents i WHERE state = ANY($1::text[]) AND ($2::text IS NULL OR type = $2) "
        "ORDER BY (severity = 'critical') DESC, id DESC LIMIT $3",
        list(states),
        incident_type,
        limit,
    )
    return [dict(r) for r in rows]


def _checklist(procedure: dict[str, Any], severity: str, done: dict[str, asyncpg.Record]) -> list[dict[str, Any]]:
    """The procedure's steps for ``severity``, each with who ticked it, when and their note (None when not done)."""
    return [
        {**step, **{k: done[step["id"]][k] if step["id"] in done else None for k in ("done_by", "done_at", "note")}}
        for step in applicable_steps(procedure, severity)
    ]


async def _timeline(conn: asyncpg.Connection, incident_id: int) -> list[dict[str, Any]]:
    """The incident's own entries and its alerts' transitions, oldest first."""
    events = await conn.fetch(
        "SELECT id, time, kind, actor, detail FROM incident_events WHERE incident_id = $1 ORDER BY id", incident_id
    )
    history = await conn.fetch(
        "SELECT h.time, h.alert_id, a.title, h.from_state, h.to_state, h.severity, h.actor, h.note, h.value "
        "FROM alert_history h JOIN incident_alerts ia ON ia.alert_id = h.alert_id "
        "JOIN alerts a ON a.id = h.alert_id WHERE ia.incident_id = $1",
        incident_id,
    )
    timeline = [{"time": e["time"], "kind": e["kind"], "actor": e["actor"], **e["detail"]} for e in events]
    timeline += [
        {
            "time": h["time"],
            "kind": "alert_history",
            "actor": h["actor"],
            "alert_id": h["alert_id"],
            "title": h["title"],
            "from": h["from_state"],
            "to": h["to_state"],
            "severity": h["severity"],
            "note": h["note"],
            "value": h["value"],
        }
        for h in history
    ]
    timeline.sort(key=lambda e: e["time"])
    return timeline


async def get(conn: asyncpg.Connection, incident_id: int) -> dict[str, Any]:
    """One incident with its alerts, checklist and timeline (its own entries and its alerts' transitions)."""
    row = await conn.fetchrow(
        f"SELECT {INCIDENT_COLUMNS}, {ESCALATIONS}, procedure FROM incidents i WHERE id = $1", incident_id
    )
    if row is None:
        raise IncidentNotFound(f"incident {incident_id} not found")
    incident = dict(row)
    procedure = incident.pop("procedure")
    alerts = await conn.fetch(
        "SELECT a.id, a.rule, a.device_id, d.name AS device_name, a.severity, a.state, a.title, a.value, "
        "a.opened_at, a.resolved_at, ia.joined_at FROM incident_alerts ia JOIN alerts a ON a.id = ia.alert_id "
        "LEFT JOIN devices d ON d.device_id = a.device_id WHERE ia.incident_id = $1 ORDER BY a.id",
        incident_id,
    )
    done = {
        r["step"]: r
        for r in await conn.fetch(
            "SELECT step, done_by, done_at, note FROM incident_steps WHERE incident_id = $1", incident_id
        )
    }
    checklist = _checklist(procedure, incident["severity"], done)
    timeline = await _timeline(conn, incident_id)
    incident.update(
        procedure={
            "type": procedure.get("type"),
            "version": procedure.get("version"),
            "name": procedure.get("name"),
            "limits": procedure.get("limits", {}),
        },
        alerts=[dict(a) for a in alerts],
        checklist=checklist,
        missing_required=missing_required(procedure, incident["severity"], set(done)),
        timeline=timeline,
    )
    return incident

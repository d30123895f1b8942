"""Incident rows, their state machine and timeline: every change is one transaction with its timeline entry.

States: new -> assigned -> in_progress -> resolved -> closed; ``reopen`` brings a resolved or closed
incident back (to assigned when someone holds it, else new). Each change an operator makes names the
``version`` they saw: the row is locked, and a different version is a ``VersionConflict`` (another
operator changed it meanwhile), so no update is ever lost. Every successful change adds one
``incident_events`` row (the timeline) and increments ``version``; the caller audits.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from incidents import notify
from incidents.errors import (  # noqa: F401 - the store's errors, as callers know them
    IncidentConflict,
    IncidentError,
    IncidentNotFound,
    InvalidInput,
    NotAllowed,
    VersionConflict,
)
from incidents.procedures import SEVERITY_RANK, Procedure, applicable_steps, missing_required
from ioc.accounts import ROLES
from ioc.db import INCIDENTS_CHANNEL

logger = logging.getLogger(__name__)

HOLDER_ROLES = ROLES[ROLES.index("operator") :]  # who may hold an incident

OPEN_STATES = ("new", "assigned", "in_progress")
STATES = (*OPEN_STATES, "resolved", "closed")
ENGINE = "engine"
# action -> states it may start from
ALLOWED = {
    "assign": OPEN_STATES,
    "start": ("assigned",),
    "resolve": OPEN_STATES,
    "close": ("resolved",),
    "reopen": ("resolved", "closed"),
    "severity": (*OPEN_STATES, "resolved"),
}
INCIDENT_COLUMNS = (
    "id, type, title, severity, state, origin, lat, lon, zone, assignee, team, version, created_by, created_at, "
    "updated_at, updated_by, last_alert_at, acknowledged_at, resolved_at, closed_at"
)


async def event(conn: asyncpg.Connection, incident_id: int, kind: str, actor: str, detail: dict[str, Any]) -> None:
    """Append one timeline entry (and tell the live servers, when the transaction commits)."""
    await conn.execute(
        "INSERT INTO incident_events (incident_id, kind, actor, detail) VALUES ($1, $2, $3, $4)",
        incident_id,
        kind,
        actor,
        detail,
    )
    await conn.execute("SELECT pg_notify($1, $2)", INCIDENTS_CHANNEL, str(incident_id))  # sent on commit


async def _locked(conn: asyncpg.Connection, incident_id: int, version: int | None) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
    if row is None:
        raise IncidentNotFound(f"incident {incident_id} not found")
    if version is not None and row["version"] != version:
        raise VersionConflict(incident_id, version, row)
    return row


NOW = object()  # a value for _update: the database's time, as every other time of an incident


async def _update(conn: asyncpg.Connection, incident_id: int, actor: str, **values: Any) -> None:
    params = {column: value for column, value in values.items() if value is not NOW}
    sets = [f"{column} = ${i}" for i, column in enumerate(params, start=3)]
    sets += [f"{column} = now()" for column, value in values.items() if value is NOW]
    await conn.execute(
        f"UPDATE incidents SET {', '.join(sets)}, version = version + 1, updated_at = now(), updated_by = $2 "
        "WHERE id = $1",
        incident_id,
        actor,
        *params.values(),
    )


def _check(row: asyncpg.Record, action: str) -> None:
    if row["state"] not in ALLOWED[action]:
        raise IncidentConflict(f"incident {row['id']} is {row['state']}: cannot {action} it")


async def create(
    conn: asyncpg.Connection,
    procedure: Procedure,
    *,
    title: str,
    severity: str,
    lat: float | None,
    lon: float | None,
    zone: str | None,
    actor: str,
    origin: str,
    note: str | None = None,
) -> int:
    """A new incident of ``procedure``'s type (it keeps a copy of the procedure); returns its id."""
    async with conn.transaction():
        if zone is None and lat is not None and lon is not None:
            zone = await conn.fetchval(
                "SELECT zone_id FROM zones ORDER BY (lat - $1) ^ 2 + ((lon - $2) * cos(radians($1))) ^ 2 LIMIT 1",
                lat,
                lon,
            )
        incident_id: int = await conn.fetchval(
            "INSERT INTO incidents (type, title, severity, origin, lat, lon, zone, procedure, created_by, updated_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
            procedure.type,
            title,
            severity,
            origin,
            lat,
            lon,
            zone,
            procedure.snapshot(),
            actor,
        )
        detail: dict[str, Any] = {"title": title, "severity": severity, "procedure_version": procedure.version}
        if note:
            detail["note"] = note
        await event(conn, incident_id, "created", actor, detail)
    logger.info("incident %s created by %s: %s (%s)", incident_id, actor, procedure.type, severity)
    return incident_id


async def assignees(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The active users an incident can be given to (operator and above), by name."""
    rows = await conn.fetch(
        "SELECT name, display, role FROM users WHERE NOT disabled AND role = ANY($1::text[]) ORDER BY name",
        list(HOLDER_ROLES),
    )
    return [dict(r) for r in rows]


async def assign(
    conn: asyncpg.Connection, incident_id: int, version: int, actor: str, assignee: str, supervisor: bool = False
) -> None:
    """Give the incident to ``assignee`` (an operator or above); ``take`` is assigning to oneself. Only a
    ``supervisor`` (or admin) gives it to someone else or takes it from whoever holds it."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, version)
        _check(row, "assign")
        if assignee != actor and not supervisor:
            raise NotAllowed(f"only a supervisor assigns incident {incident_id} to someone else: take it yourself")
        if row["assignee"] not in (None, actor) and not supervisor:
            raise NotAllowed(f"incident {incident_id} is held by {row['assignee']}: only a supervisor reassigns it")
        role = await conn.fetchval("SELECT role FROM users WHERE name = $1 AND NOT disabled", assignee)
        if role not in HOLDER_ROLES:
            raise InvalidInput(f"{assignee!r} is not an active operator")
        if row["assignee"] == assignee and row["state"] != "new":
            raise IncidentConflict(f"incident {incident_id} is already assigned to {assignee}")
        values: dict[str, Any] = {"assignee": assignee, "state": "assigned"}
        if row["acknowledged_at"] is None:
            values["acknowledged_at"] = NOW
        await _update(conn, incident_id, actor, **values)
        await event(conn, incident_id, "assign", actor, {"from": row["assignee"], "to": assignee})
        if row["state"] != "assigned":
            await event(conn, incident_id, "state", actor, {"from": row["state"], "to": "assigned"})


async def end_field_links(conn: asyncpg.Connection, incident_id: int, actor: str, reason: str, keep: str | None) -> int:
    """Revoke the incident's live field links (inside the caller's change), each with a timeline entry; with
    ``keep``, only other teams' links (a team that no longer holds the incident cannot post to it); ``reason`` is
    ``handover`` or ``closed``. Returns how many."""
    rows = await conn.fetch(
        "UPDATE field_links SET revoked_at = now(), revoked_by = $2 WHERE incident_id = $1 AND revoked_at IS NULL "
        "AND expires_at > now() AND ($3::text IS NULL OR (team IS NOT NULL AND team <> $3)) RETURNING id, team",
        incident_id,
        actor,
        keep,
    )
    for r in rows:
        detail = {"action": "revoked", "link_id": r["id"], "team": r["team"], "reason": reason}
        await event(conn, incident_id, "field_link", actor, detail)
    if rows:
        logger.info("incident %s: %d field link(s) revoked (%s)", incident_id, len(rows), reason)
    return len(rows)


# Makes the team's field link inside assign_team; returns the fields it adds to the notification.
LinkMaker = Callable[[asyncpg.Connection, int, str], Awaitable[dict[str, Any]]]


async def assign_team(
    conn: asyncpg.Connection, incident_id: int, version: int, actor: str, team: str, link: LinkMaker | None = None
) -> int:
    """Hand the incident to a field team (it keeps its operator), notify it (with ``link``'s); returns how many."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, version)
        _check(row, "assign")
        if not await conn.fetchval("SELECT enabled FROM field_teams WHERE team_id = $1", team):
            raise InvalidInput(f"{team!r} is not an active field team")
        if row["team"] == team:
            raise IncidentConflict(f"incident {incident_id} is already with team {team}")
        values: dict[str, Any] = {"team": team}
        if row["state"] == "new":
            values["state"] = "assigned"
        if row["acknowledged_at"] is None:
            values["acknowledged_at"] = NOW
        await _update(conn, incident_id, actor, **values)
        await event(conn, incident_id, "assign", actor, {"team_from": row["team"], "team": team})
        await end_field_links(conn, incident_id, actor, "handover", keep=team)
        if row["state"] == "new":
            await event(conn, incident_id, "state", actor, {"from": "new", "to": "assigned"})
        extra = await link(conn, incident_id, team) if link else None
        return await notify.enqueue(conn, incident_id, team, "incident.assigned", extra)


async def start(conn: asyncpg.Connection, incident_id: int, version: int, actor: str) -> None:
    """Work has begun (assigned -> in_progress)."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, version)
        _check(row, "start")
        await _update(conn, incident_id, actor, state="in_progress")
        await event(conn, incident_id, "state", actor, {"from": row["state"], "to": "in_progress"})


async def done_steps(conn: asyncpg.Connection, incident_id: int) -> set[str]:
    """Ids of the steps ticked on the incident."""
    return {r["step"] for r in await conn.fetch("SELECT step FROM incident_steps WHERE incident_id = $1", incident_id)}


async def resolve(
    conn: asyncpg.Connection,
    incident_id: int,
    version: int,
    actor: str,
    note: str | None,
    override: str | None,
    supervisor: bool = False,
) -> list[str]:
    """Resolve; required steps not ticked refuse it unless ``override`` gives a reason (from the operator holding
    the incident, or a ``supervisor``). Returns the steps overridden."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, version)
        _check(row, "resolve")
        missing = missing_required(row["procedure"], row["severity"], await done_steps(conn, incident_id))
        if missing and not (override and override.strip()):
            raise IncidentConflict(
                f"required steps not done: {', '.join(missing)}; tick them, or resolve with an override reason"
            )
        if missing and row["assignee"] != actor and not supervisor:
            raise NotAllowed(
                f"only the operator holding incident {incident_id} or a supervisor may override its required steps"
            )
        await _update(conn, incident_id, actor, state="resolved", resolved_at=NOW)
        detail: dict[str, Any] = {"from": row["state"], "to": "resolved"}
        if note:
            detail["note"] = note
        if missing:
            detail.update(override=override, skipped=missing)
        await event(conn, incident_id, "state", actor, detail)
    return missing


async def close(conn: asyncpg.Connection, incident_id: int, version: int, actor: str, note: str | None) -> None:
    """Close a resolved incident (nothing left to do)."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, version)
        _check(row, "close")
        await _update(conn, incident_id, actor, state="closed", closed_at=NOW)
        await event(conn, incident_id, "state", actor, {"from": row["state"], "to": "closed", "note": note})
        await end_field_links(conn, incident_id, actor, "closed", keep=None)


async def reopen(conn: asyncpg.Connection, incident_id: int, version: int, actor: str, reason: str) -> str:
    """Reopen a resolved or closed incident; returns its new state."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, version)
        _check(row, "reopen")
        state = "assigned" if row["assignee"] else "new"
        await _update(conn, incident_id, actor, state=state, resolved_at=None, closed_at=None)
        await event(conn, incident_id, "state", actor, {"from": row["state"], "to": state, "note": reason})
    return state


async def set_severity(
    conn: asyncpg.Connection, incident_id: int, version: int, actor: str, severity: str, reason: str
) -> None:
    """Change the severity by hand (the reason is kept in the timeline)."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, version)
        _check(row, "severity")
        if row["severity"] == severity:
            raise IncidentConflict(f"incident {incident_id} is already {severity}")
        await _update(conn, incident_id, actor, severity=severity)
        await event(conn, incident_id, "severity", actor, {"from": row["severity"], "to": severity, "note": reason})


async def tick(conn: asyncpg.Connection, incident_id: int, step: str, actor: str, note: str | None) -> None:
    """Mark a procedure step done by ``actor`` now; a step is ticked once (the second is a conflict)."""
    async with conn.transaction():
        row = await _locked(conn, incident_id, None)
        if row["state"] not in OPEN_STATES:
            raise IncidentConflict(f"incident {incident_id} is {row['state']}: reopen it to tick steps")
        steps = {s["id"]: s for s in applicable_steps(row["procedure"], row["severity"])}
        if step not in steps:
            raise InvalidInput(f"{step!r} is not a step of this incident's procedure")
        done = await conn.fetchrow(
            "INSERT INTO incident_steps (incident_id, step, done_by, note) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING RETURNING done_at",
            incident_id,
            step,
            actor,
            note,
        )
        if done is None:
            by = await conn.fetchrow(
                "SELECT done_by, done_at FROM incident_steps WHERE incident_id = $1 AND step = $2", incident_id, step
            )
            raise IncidentConflict(f"step {step!r} was already done by {by['done_by']} at {by['done_at']:%H:%M:%S}")
        await conn.execute("UPDATE incidents SET updated_at = now() WHERE id = $1", incident_id)
        await event(conn, incident_id, "step", actor, {"step": step, "text": steps[step]["text"], "note": note})


async def add_note(conn: asyncpg.Connection, incident_id: int, actor: str, text: str) -> None:
    """Append an operator's note to the timeline."""
    async with conn.transaction():
        await _locked(conn, incident_id, None)
        await conn.execute("UPDATE incidents SET updated_at = now() WHERE id = $1", incident_id)
        await event(conn, incident_id, "note", actor, {"text": text})


def raises_severity(current: str, candidate: str) -> bool:
    """Whether ``candidate`` is more severe than ``current``."""
    return SEVERITY_RANK.get(candidate, 0) > SEVERITY_RANK.get(current, 0)

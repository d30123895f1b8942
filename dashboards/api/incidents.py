"""``/api/v1/incidents``: list, detail with timeline and checklist, nearby devices (viewer); every action (operator).

Each action that changes the incident names the ``version`` the operator saw; if someone else changed it
meanwhile the answer is 409 ``version_conflict`` with who and when, and nothing is written. Every attempt,
whatever its outcome, is audited (``incident.<action>``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AnyHttpUrl, BaseModel, Field, model_validator

from dashboards.api.acting import Act, IncidentId
from dashboards.api.deps import AdminDep, ConnDep, OperatorDep, SourceDep
from dashboards.api.errors import ApiError, not_found
from dashboards.api.field import link_maker
from dashboards.api.procedures import synced
from dashboards.encoding import as_utc
from incidents import handover, nearby, notify, queries, store
from incidents.procedures import Procedure
from ioc import audit

router = APIRouter(tags=["incidents"])

Json = dict[str, Any]
StepId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Severity = Literal["warning", "critical"]
Listed = Literal["open", "new", "assigned", "in_progress", "resolved", "closed", "all"]
Note = Annotated[str | None, Field(max_length=2000)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class Versioned(BaseModel):
    """The version of the incident the operator acted on (from its last GET)."""

    version: int = Field(ge=1, le=2**31 - 1)


class AssignIn(Versioned):
    """Give the incident to an operator (``assignee``) or hand it to a field team (``team``), one of the two."""

    assignee: str | None = Field(None, min_length=1, max_length=128)
    team: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one(self) -> AssignIn:
        if (self.assignee is None) == (self.team is None):
            raise ValueError("give either assignee or team")
        return self


class TeamIn(BaseModel):
    """A field team: who is in it and how it is told (a webhook, signed with a secret made here, and/or e-mail)."""

    team_id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    webhook_url: AnyHttpUrl | None = None
    email: str | None = Field(None, pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")
    members: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list, max_length=100)


class ResolveIn(Versioned):
    """Resolve; ``override_reason`` lets it through with required steps not done."""

    note: Note = None
    override_reason: Note = None


class CloseIn(Versioned):
    """Close a resolved incident."""

    note: Note = None


class ReopenIn(Versioned):
    """Reopen, saying why."""

    reason: Reason


class SeverityIn(Versioned):
    """Set the severity by hand, saying why."""

    severity: Severity
    reason: Reason


class CreateIn(BaseModel):
    """An incident an operator enters (a phone report): its type, what, where."""

    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    severity: Severity = "warning"
    zone: str | None = Field(None, max_length=64)
    note: Note = None


class StepIn(BaseModel):
    """A note on a ticked step."""

    note: Note = None


class NoteIn(BaseModel):
    """A note in the timeline."""

    text: str = Field(min_length=1, max_length=4000)


@router.get("/incidents")
async def list_incidents(
    conn: ConnDep,
    state: Listed = "open",
    type: Annotated[str | None, Query(max_length=64)] = None,  # noqa: A002 - the API's word
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Json:
    """Incidents, most severe then newest first; ``state=open`` (default) is new, assigned and in progress."""
    states = store.OPEN_STATES if state == "open" else store.STATES if state == "all" else (state,)
    return {"items": await queries.list_incidents(conn, states=states, incident_type=type, limit=limit)}


@router.post("/incidents", status_code=201)
async def create_incident(body: CreateIn, request: Request, conn: ConnDep, by: OperatorDep, source: SourceDep) -> Json:
    """Enter an incident by hand (operator): its type's procedure applies."""
    catalogue = await synced(request, conn)
    procedure: Procedure | None = catalogue.procedures.get(body.type)
    if procedure is None:
        known = ", ".join(catalogue.procedures)
        await audit.record(conn, by.name, "incident.create", "", "failure", source, {"reason": "unknown type"})
        raise ApiError(422, "invalid", f"unknown incident type {body.type!r} (known: {known})")
    incident_id = await store.create(
        conn,
        procedure,
        title=body.title,
        severity=body.severity,
        lat=body.lat,
        lon=body.lon,
        zone=body.zone,
        actor=by.name,
        origin="operator",
        note=body.note,
    )
    await audit.record(conn, by.name, "incident.create", str(incident_id), "success", source, body.model_dump())
    return await queries.get(conn, incident_id)


@router.get("/incidents/{incident_id}")
async def get_incident(incident_id: IncidentId, conn: ConnDep) -> Json:
    """One incident: its alerts, checklist (with who ticked what, when) and timeline."""
    try:
        return await queries.get(conn, incident_id)
    except store.IncidentNotFound as exc:
        raise not_found(f"incident {incident_id}") from exc


@router.get("/incidents/{incident_id}/nearby")
async def get_nearby(
    incident_id: IncidentId,
    conn: ConnDep,
    radius_m: Annotated[float, Query(gt=0, le=10_000)] = nearby.DEFAULT_RADIUS_M,
) -> Json:
    """Cameras, flood sensors and traffic detectors within ``radius_m``, nearest first, with bearing and readings."""
    row = await conn.fetchrow("SELECT lat, lon FROM incidents WHERE id = $1", incident_id)
    if row is None:
        raise not_found(f"incident {incident_id}")
    if row["lat"] is None or row["lon"] is None:
        return {"radius_m": radius_m, "items": [], "located": False}
    devices = await nearby.nearby_devices(conn, row["lat"], row["lon"], radius_m=radius_m)
    return {"radius_m": radius_m, "items": await nearby.with_readings(conn, devices), "located": True}


@router.post("/incidents/{incident_id}/take")
async def take(body: Versioned, act: Act) -> Json:
    """Take the incident: assign it to yourself (acknowledges it)."""
    by, supervisor = act.user.name, act.user.can("supervisor")
    return await act("incident.take", body.model_dump(), store.assign, body.version, by, by, supervisor)


@router.get("/assignees")
async def list_assignees(conn: ConnDep, by: OperatorDep) -> Json:
    """Who an incident can be given to (active operators, supervisors, admins), and whether you may give it to
    someone else (supervisors and admins; operators only take)."""
    return {"items": await store.assignees(conn), "can_assign": by.can("supervisor")}


@router.post("/incidents/{incident_id}/assign")
async def assign(body: AssignIn, act: Act, request: Request) -> Json:
    """Assign (or reassign) the incident to an operator (supervisors and admins; 403 for an operator naming
    anyone but themself), or hand it to a field team (which is notified, with a field link; the links of teams
    that held it before are revoked)."""
    by, detail = act.user.name, body.model_dump()
    if body.team is not None:
        link = link_maker(request, by)
        return await act("incident.assign", detail, store.assign_team, body.version, by, body.team, link)
    supervisor = act.user.can("supervisor")
    return await act("incident.assign", detail, store.assign, body.version, by, body.assignee, supervisor)


@router.post("/incidents/{incident_id}/start")
async def start(body: Versioned, act: Act) -> Json:
    """Work has started (assigned -> in_progress)."""
    return await act("incident.start", body.model_dump(), store.start, body.version, act.user.name)


@router.post("/incidents/{incident_id}/resolve")
async def resolve(body: ResolveIn, act: Act) -> Json:
    """Resolve; 409 while required steps are not ticked, unless ``override_reason`` is given."""
    by, reason, supervisor = act.user.name, body.override_reason, act.user.can("supervisor")
    detail = body.model_dump()
    return await act("incident.resolve", detail, store.resolve, body.version, by, body.note, reason, supervisor)


@router.post("/incidents/{incident_id}/close")
async def close(body: CloseIn, act: Act) -> Json:
    """Close a resolved incident."""
    return await act("incident.close", body.model_dump(), store.close, body.version, act.user.name, body.note)


@router.post("/incidents/{incident_id}/reopen")
async def reopen(body: ReopenIn, act: Act) -> Json:
    """Reopen a resolved or closed incident (to assigned when it has an assignee, else new)."""
    return await act("incident.reopen", body.model_dump(), store.reopen, body.version, act.user.name, body.reason)


@router.post("/incidents/{incident_id}/severity")
async def severity(body: SeverityIn, act: Act) -> Json:
    """Change the severity by hand, with a reason."""
    by, detail = act.user.name, body.model_dump()
    return await act("incident.severity", detail, store.set_severity, body.version, by, body.severity, body.reason)


@router.post("/incidents/{incident_id}/steps/{step}")
async def tick_step(step: StepId, act: Act, body: StepIn | None = None) -> Json:
    """Tick a procedure step as done (by you, now, with an optional note); each step is ticked once."""
    note = body.note if body else None
    return await act("incident.step", {"step": step, "note": note}, store.tick, step, act.user.name, note)


@router.post("/incidents/{incident_id}/notes")
async def add_note(body: NoteIn, act: Act) -> Json:
    """Add a note to the timeline."""
    return await act("incident.note", body.model_dump(), store.add_note, act.user.name, body.text)


@router.get("/teams")
async def list_teams(conn: ConnDep) -> Json:
    """Field teams (without their webhook secrets)."""
    rows = await conn.fetch("SELECT * FROM field_teams ORDER BY team_id")
    return {"items": [notify.team_view(r) for r in rows]}


@router.post("/teams", status_code=201)
async def create_team(body: TeamIn, conn: ConnDep, by: AdminDep, source: SourceDep) -> Json:
    """Add a field team (admin). A webhook gets a new signing secret, shown in this answer only."""
    secret = secrets.token_urlsafe(32) if body.webhook_url else None
    row = await conn.fetchrow(
        "INSERT INTO field_teams (team_id, name, webhook_url, webhook_secret, email, members) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (team_id) DO NOTHING RETURNING *",
        body.team_id,
        body.name,
        str(body.webhook_url) if body.webhook_url else None,
        secret,
        body.email,
        body.members,
    )
    detail = body.model_dump(mode="json")
    if row is None:
        await audit.record(
            conn, by.name, "team.create", body.team_id, "failure", source, {**detail, "reason": "exists"}
        )
        raise ApiError(409, "conflict", f"team {body.team_id!r} already exists")
    await audit.record(conn, by.name, "team.create", body.team_id, "success", source, detail)
    return {**notify.team_view(row), "webhook_secret": secret}


@router.get("/notifications")
async def list_notifications(
    conn: ConnDep,
    by: AdminDep,
    state: Literal["pending", "sent", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Json:
    """Notifications to field teams, newest first (admin); ``state=dead`` is the dead-letter list."""
    rows = await conn.fetch(
        "SELECT id, incident_id, team_id, channel, target, event, state, attempts, next_at, last_error, created_at, "
        "sent_at FROM notifications WHERE ($1::text IS NULL OR state = $1) ORDER BY id DESC LIMIT $2",
        state,
        limit,
    )
    return {"items": [dict(r) for r in rows]}


SHIFT = timedelta(hours=8)
MAX_REPORT = timedelta(days=31)


@router.get("/handover")
async def get_handover(
    conn: ConnDep,
    start: Annotated[
        datetime | None, Query(alias="from", description="shift start (ISO 8601); default to - 8 h")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="shift end (ISO 8601); default now")] = None,
) -> Json:
    """The shift handover: KPIs, incidents open at the end, incidents worked in the shift, key events."""
    end = as_utc(end) or datetime.now(UTC)
    start = as_utc(start) or end - SHIFT
    if not start < end or end - start > MAX_REPORT:
        raise ApiError(400, "bad_request", "from must be before to, at most 31 days apart")
    return await handover.report(conn, start, end)

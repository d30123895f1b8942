"""``/api/v1/alerts``: list and detail with history (viewer), acknowledge and resolve (operator, audited)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field

from dashboards import queries
from dashboards.alerts import store
from dashboards.api.deps import ConnDep, OperatorDep, SourceDep
from dashboards.api.errors import ApiError, not_found
from ioc import audit
from ioc.accounts import User

router = APIRouter(tags=["alerts"])

State = Literal["open", "acknowledged", "resolved", "active"]
Severity = Literal["warning", "critical"]


class NoteIn(BaseModel):
    """An operator's note on a transition."""

    note: str | None = Field(None, max_length=2000)


Note = Annotated[NoteIn | None, Body()]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # a bigint
Json = dict[str, Any]


@router.get("/alerts")
async def list_alerts(
    conn: ConnDep,
    state: State | None = None,
    severity: Severity | None = None,
    zone: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alerts newest first; ``state=active`` means open or acknowledged."""
    return {"items": await queries.load_alerts(conn, state=state, severity=severity, zone=zone, limit=limit)}


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: AlertId, conn: ConnDep) -> dict[str, Any]:
    """One alert with its history."""
    try:
        return await store.get_alert(conn, alert_id)
    except store.AlertNotFound as exc:
        raise not_found(f"alert {alert_id}") from exc


async def _transition(conn: ConnDep, source: str, alert_id: int, user: User, body: NoteIn | None, to: str) -> Json:
    """Move the alert to ``to`` as ``user`` and audit the attempt, whatever its outcome."""
    acknowledging = to == "acknowledged"
    move, action = (store.acknowledge, "alert.acknowledge") if acknowledging else (store.resolve, "alert.resolve")
    note = body.note if body else None
    try:
        result = await move(conn, alert_id, user.name, note)
    except store.AlertNotFound as exc:
        await audit.record(conn, user.name, action, str(alert_id), "failure", source, {"reason": "not found"})
        raise not_found(f"alert {alert_id}") from exc
    except store.AlertConflict as exc:
        await audit.record(conn, user.name, action, str(alert_id), "failure", source, {"reason": str(exc)})
        raise ApiError(409, "conflict", str(exc)) from exc
    await audit.record(conn, user.name, action, str(alert_id), "success", source, {"note": note} if note else None)
    return result


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: AlertId, conn: ConnDep, by: OperatorDep, source: SourceDep, body: Note = None) -> Json:
    """Acknowledge an alert (operator; it stays acknowledged until resolved)."""
    return await _transition(conn, source, alert_id, by, body, "acknowledged")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(alert_id: AlertId, conn: ConnDep, by: OperatorDep, source: SourceDep, body: Note = None) -> Json:
    """Resolve an alert by hand (operator)."""
    return await _transition(conn, source, alert_id, by, body, "resolved")

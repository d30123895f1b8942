"""``/api/v1/alerts``: list, detail with history, acknowledge and resolve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from dashboards import aggregates as agg
from dashboards.alerts import store
from dashboards.api.deps import ConnDep, UserDep
from dashboards.api.errors import ApiError, not_found

router = APIRouter(tags=["alerts"])

State = Literal["open", "acknowledged", "resolved", "active"]
Severity = Literal["warning", "critical"]


class Note(BaseModel):
    """An operator's note on a transition."""

    note: str | None = Field(None, max_length=2000)


NoteBody = Annotated[Note | None, Body()]


@router.get("/alerts")
async def list_alerts(
    conn: ConnDep,
    state: State | None = None,
    severity: Severity | None = None,
    zone: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alerts newest first; ``state=active`` means open or acknowledged."""
    return {"items": await agg.load_alerts(conn, state=state, severity=severity, zone=zone, limit=limit)}


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: int, conn: ConnDep) -> dict[str, Any]:
    """One alert with its history."""
    try:
        return await store.get_alert(conn, alert_id)
    except store.AlertNotFound as exc:
        raise not_found(f"alert {alert_id}") from exc


async def _transition(conn: ConnDep, alert_id: int, user: str, body: Note | None, to: str) -> dict[str, Any]:
    action = store.acknowledge if to == "acknowledged" else store.resolve
    try:
        return await action(conn, alert_id, user, body.note if body else None)
    except store.AlertNotFound as exc:
        raise not_found(f"alert {alert_id}") from exc
    except store.AlertConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: int, conn: ConnDep, user: UserDep, body: NoteBody = None) -> dict[str, Any]:
    """Acknowledge an alert (it stays acknowledged until resolved)."""
    return await _transition(conn, alert_id, user, body, "acknowledged")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(alert_id: int, conn: ConnDep, user: UserDep, body: NoteBody = None) -> dict[str, Any]:
    """Resolve an alert by hand."""
    return await _transition(conn, alert_id, user, body, "resolved")

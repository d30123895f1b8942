"""Alert rows and their history: every transition is one transaction that also NOTIFYs ``ioc_alerts``."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg

from dashboards import metrics
from dashboards.queries import ALERT_SELECT, alert_row
from ioc.db import ALERTS_CHANNEL

logger = logging.getLogger(__name__)

ENGINE = "engine"


class AlertNotFound(LookupError):
    """No alert has this id."""


class AlertConflict(ValueError):
    """The transition is not allowed from the alert's state (e.g. acknowledging a resolved alert)."""


async def _history(
    conn: asyncpg.Connection,
    alert_id: int,
    from_state: str | None,
    to_state: str,
    severity: str,
    actor: str,
    note: str | None,
    value: float | None,
) -> None:
    await conn.execute(
        "INSERT INTO alert_history (alert_id, from_state, to_state, severity, actor, note, value) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        alert_id,
        from_state,
        to_state,
        severity,
        actor,
        note,
        value,
    )
    await conn.execute(
        "SELECT pg_notify($1, $2)",
        ALERTS_CHANNEL,
        json.dumps({"id": alert_id, "state": to_state, "severity": severity}),
    )
    metrics.ALERT_TRANSITIONS.labels(to_state, "engine" if actor == ENGINE else "user").inc()


async def open_alert(
    conn: asyncpg.Connection,
    *,
    rule: str,
    device_id: str,
    zone: str | None,
    severity: str,
    title: str,
    message: str,
    value: float | None,
) -> int | None:
    """Open an alert, unless one is already active for (rule, device); returns its id or None."""
    async with conn.transaction():
        alert_id = await conn.fetchval(
            "INSERT INTO alerts (rule, device_id, zone, severity, state, title, message, value) "
            "VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) "
            "ON CONFLICT (rule, device_id) WHERE state <> 'resolved' DO NOTHING RETURNING id",
            rule,
            device_id,
            zone,
            severity,
            title,
            message,
            value,
        )
        if alert_id is not None:
            await _history(conn, alert_id, None, "open", severity, ENGINE, message, value)
    if alert_id is not None:
        logger.info("alert %s opened: %s %s %s (%s)", alert_id, rule, device_id, severity, message)
    return alert_id  # type: ignore[no-any-return]


async def escalate(conn: asyncpg.Connection, alert_id: int, severity: str, message: str, value: float | None) -> bool:
    """Raise an active alert's severity (its state, open or acknowledged, is kept)."""
    async with conn.transaction():
        state = await conn.fetchval(
            "UPDATE alerts SET severity = $2, message = $3, value = $4, updated_at = now() "
            "WHERE id = $1 AND state <> 'resolved' AND severity <> $2 RETURNING state",
            alert_id,
            severity,
            message,
            value,
        )
        if state is not None:
            await _history(conn, alert_id, state, state, severity, ENGINE, message, value)
    if state is not None:
        logger.info("alert %s escalated to %s (%s)", alert_id, severity, message)
    return state is not None


async def _transition(
    conn: asyncpg.Connection,
    alert_id: int,
    to_state: str,
    actor: str,
    note: str | None,
    value: float | None = None,
) -> dict[str, Any]:
    async with conn.transaction():
        row = await conn.fetchrow("SELECT state, severity, value FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
        if row is None:
            raise AlertNotFound(alert_id)
        if row["state"] == "resolved":
            raise AlertConflict(f"alert {alert_id} is already resolved")
        if to_state == "acknowledged":
            await conn.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2, "
                "note = coalesce($3, note), updated_at = now() WHERE id = $1",
                alert_id,
                actor,
                note,
            )
        else:
            await conn.execute(
                "UPDATE alerts SET state = 'resolved', resolved_at = now(), resolved_by = $2, "
                "note = coalesce($3, note), value = coalesce($4, value), updated_at = now() WHERE id = $1",
                alert_id,
                actor,
                note,
                value,
            )
        await _history(
            conn,
            alert_id,
            row["state"],
            to_state,
            row["severity"],
            actor,
            note,
            value if value is not None else row["value"],
        )
        alert = await conn.fetchrow(f"{ALERT_SELECT} WHERE a.id = $1", alert_id)
    logger.info("alert %s %s by %s", alert_id, to_state, actor)
    return alert_row(alert)


async def acknowledge(conn: asyncpg.Connection, alert_id: int, actor: str, note: str | None) -> dict[str, Any]:
    """Acknowledge an open (or re-acknowledge an acknowledged) alert; records who, when and the note."""
    return await _transition(conn, alert_id, "acknowledged", actor, note)


async def resolve(
    conn: asyncpg.Connection, alert_id: int, actor: str, note: str | None, value: float | None = None
) -> dict[str, Any]:
    """Resolve an active alert."""
    return await _transition(conn, alert_id, "resolved", actor, note, value)


async def get_alert(conn: asyncpg.Connection, alert_id: int) -> dict[str, Any]:
    """An alert with its history, oldest transition first."""
    row = await conn.fetchrow(f"{ALERT_SELECT} WHERE a.id = $1", alert_id)
    if row is None:
        raise AlertNotFound(alert_id)
    history = await conn.fetch(
        "SELECT time, from_state, to_state, severity, actor, note, value FROM alert_history "
        "WHERE alert_id = $1 ORDER BY id",
        alert_id,
    )
    alert = alert_row(row)
    alert["history"] = [alert_row(h) for h in history]
    return alert

"""The audit log: who did what to which thing, from where, and whether it worked.

Values are stored as given (bounded in length, NUL removed because PostgreSQL text cannot hold it)
and made safe where they are shown: ``log_safe`` for log lines, HTML escaping in the browser.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

logger = logging.getLogger(__name__)

MAX_FIELD = 512
MAX_DETAIL_STRING = 2048
OUTCOMES = ("success", "failure", "denied", "throttled")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log."""

    id: int
    time: datetime
    actor: str
    action: str
    target: str
    outcome: str
    source: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The entry as the API returns it (raw values; the page escapes them)."""
        return {
            "id": self.id,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "source": self.source,
            "detail": self.detail,
        }


def log_safe(value: object, limit: int = 200) -> str:
    """``value`` as one printable line: control, format and separator characters become ``\\uXXXX``."""
    text = str(value)
    out = []
    for ch in text[:limit]:
        if ch == " " or unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp", "Zs", "Cs"}:
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}")
    if len(text) > limit:
        out.append("…")
    return "".join(out)


def _storable(value: str, limit: int) -> str:
    return value[:limit].replace("\x00", "\ufffd")


def _storable_detail(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return None
    if isinstance(value, str):
        return _storable(value, MAX_DETAIL_STRING)
    if isinstance(value, dict):
        return {_storable(str(k), MAX_FIELD): _storable_detail(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple):
        return [_storable_detail(v, depth + 1) for v in list(value)[:50]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _storable(str(value), MAX_DETAIL_STRING)


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    source: str = "",
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one entry (time is the database's UTC now) and log it as one safe line; returns its id."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)} (got {outcome!r})")
    row_id: int = await conn.fetchval(
        "INSERT INTO audit_log (actor, action, target, outcome, source, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id",
        _storable(actor, MAX_FIELD),
        _storable(action, MAX_FIELD),
        _storable(target, MAX_FIELD),
        outcome,
        _storable(source, MAX_FIELD),
        _storable_detail(detail or {}),
    )
    logger.info(
        "audit %s %s target=%s outcome=%s actor=%s source=%s",
        row_id,
        log_safe(action),
        log_safe(target),
        outcome,
        log_safe(actor),
        log_safe(source),
    )
    return row_id


async def recent(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    limit: int = 100,
    before_id: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
) -> list[AuditEntry]:
    """The newest entries first, optionally before an id (paging) and filtered by action, actor or target."""
    rows = await conn.fetch(
        "SELECT id, time, actor, action, target, outcome, source, detail FROM audit_log "
        "WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR action = $2) "
        "AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR target = $4) "
        "ORDER BY id DESC LIMIT $5",
        before_id,
        action,
        actor,
        target,
        max(1, min(limit, 1000)),
    )
    return [AuditEntry(**dict(r)) for r in rows]

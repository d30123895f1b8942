"""The audit log: who did what to which thing, from where, and whether it worked.

Values are stored as given (bounded in length, NUL removed because PostgreSQL text cannot hold it)
and made safe where they are shown: ``log_safe`` for log lines, HTML escaping in the browser.

Refusals (requests without a session, a foreign Origin, throttled logins) go through ``RefusalLog``,
which writes one row per source and action per minute and counts the repeats, so anonymous traffic
cannot fill the table; ``prune`` applies the retention (IOC_AUDIT_RETENTION_DAYS).
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

logger = logging.getLogger(__name__)

MAX_FIELD = 512
MAX_DETAIL_STRING = 2048
OUTCOMES = ("success", "failure", "denied", "throttled")

Entry = tuple[str, str, str, str, str]  # actor, action, target, outcome, source


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
    *,
    refusals: RefusalLog | None = None,
) -> int | None:
    """Append one entry (time is the database's UTC now), log it as one safe line and return its id.

    Through ``refusals`` (a refusal) the entry is only counted, and None returned, when its kind already has a
    row in the refusal log's current window.
    """
    entry = (actor, action, target, outcome, source)
    if refusals is not None:
        return await refusals.count(conn, entry, detail or {})
    return await _insert(conn, entry, detail or {})


async def _insert(conn: asyncpg.Connection | asyncpg.Pool, entry: Entry, detail: dict[str, Any]) -> int:
    actor, action, target, outcome, source = entry
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
        _storable_detail(detail),
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


async def prune(conn: asyncpg.Connection | asyncpg.Pool, keep: timedelta, batch: int = 10_000) -> int:
    """Delete entries older than ``keep`` (in batches, so no long lock); returns how many went."""
    removed = 0
    while True:
        status: str = await conn.execute(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE time < now() - $1::interval "
            "ORDER BY time LIMIT $2)",
            keep,
            batch,
        )
        count = int(status.rsplit(" ", 1)[-1])
        removed += count
        if count < batch:
            return removed


@dataclass(slots=True)
class _Burst:
    """The refusals of one key in the current window: the first was written, ``repeats`` were not yet."""

    entry: Entry
    detail: dict[str, Any]
    first_at: datetime
    last_at: datetime
    repeats: int = 0


@dataclass
class RefusalLog:
    """Refused requests written to the audit log at a bounded rate, with nothing left uncounted.

    Time is cut into fixed windows of ``window_s``. The first refusal of a (source, actor, action,
    outcome, ``detail.reason``) in a window is written at once; its repeats are counted and written as one more row
    (``detail.repeats``, ``detail.first_at``, ``detail.last_at``) when the window closes. A source gets
    at most ``per_source`` keys per window (its further paths are folded into action ``*``), and the
    process at most ``max_keys`` (further sources are folded into source ``*``): at most
    2 x (``max_keys`` + 1) rows per window per server process, whatever the traffic.
    """

    window_s: float = 60.0
    per_source: int = 20
    max_keys: int = 1000
    clock: Callable[[], float] = time.monotonic
    _window: int = field(default=-1, init=False)
    _bursts: dict[tuple[str, ...], _Burst] = field(default_factory=dict, init=False)
    _per_source: Counter[str] = field(default_factory=Counter, init=False)

    async def count(
        self, conn: asyncpg.Connection | asyncpg.Pool, entry: Entry, detail: dict[str, Any]
    ) -> int | None:
        """Count one refusal: written now (its id returned) when it opens its kind's window, else counted for the
        window's summary (None)."""
        await self.flush(conn)
        now = datetime.now(UTC)
        actor, action, target, outcome, source = entry
        key: tuple[str, ...] = (source, actor, action, outcome, str(detail.get("reason", "")))
        burst = self._bursts.get(key)
        if burst is None and self._per_source[source] >= self.per_source:
            key, action, target = (source, actor, "*", outcome), "*", ""
            detail = {"folded": f"more than {self.per_source} kinds of refusal from this source"}
            burst = self._bursts.get(key)
        if burst is None and len(self._bursts) >= self.max_keys:
            key, actor, action, target, source = ("*", "*", "*", outcome), "*", "*", "", "*"
            detail = {"folded": f"more than {self.max_keys} sources or kinds of refusal"}
            burst = self._bursts.get(key)
        if burst is not None:
            burst.repeats += 1
            burst.last_at = now
            return None
        entry, detail = (actor, action, target, outcome, source), dict(detail)
        self._bursts[key] = _Burst(entry, detail, now, now)
        self._per_source[source] += 1
        return await _insert(conn, entry, detail)

    async def flush(self, conn: asyncpg.Connection | asyncpg.Pool, *, now: bool = False) -> int:
        """Write the summaries of a window that has closed (or of the open one, ``now``); returns rows written."""
        window = int(self.clock() // self.window_s)
        if window == self._window and not now:
            return 0
        closed, self._bursts, self._window = self._bursts, {}, window
        self._per_source = Counter()
        written = 0
        for burst in closed.values():
            if burst.repeats:
                summary = {
                    **burst.detail,
                    "repeats": burst.repeats,
                    "first_at": burst.first_at.isoformat(),
                    "last_at": burst.last_at.isoformat(),
                }
                await _insert(conn, burst.entry, summary)
                written += 1
        return written

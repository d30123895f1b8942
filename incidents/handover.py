"""The shift handover report: what is open, what was done during the shift, key events and the shift's figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from incidents.store import INCIDENT_COLUMNS

# Times to acknowledge count incidents created in the shift; times to resolve, incidents resolved in it.
KPIS = """
SELECT
  (SELECT count(*) FROM alerts WHERE opened_at >= $1 AND opened_at < $2) AS alerts,
  (SELECT count(*) FROM incidents WHERE created_at >= $1 AND created_at < $2) AS incidents,
  (SELECT count(*) FROM incidents WHERE resolved_at >= $1 AND resolved_at < $2) AS resolved,
  (SELECT avg(extract(epoch FROM acknowledged_at - created_at))::float8 FROM incidents
    WHERE created_at >= $1 AND created_at < $2 AND acknowledged_at IS NOT NULL) AS mean_acknowledge_s,
  (SELECT avg(extract(epoch FROM resolved_at - created_at))::float8 FROM incidents
    WHERE resolved_at >= $1 AND resolved_at < $2) AS mean_resolve_s,
  (SELECT count(*) FROM incident_events WHERE kind = 'escalation' AND time >= $1 AND time < $2) AS breaches
"""
KEY_EVENTS = ("created", "state", "severity", "assign", "step", "note", "photo", "pin", "escalation")


async def report(conn: asyncpg.Connection, start: datetime, end: datetime, limit: int = 500) -> dict[str, Any]:
    """The handover of the shift [start, end): KPIs, incidents open at its end, incidents worked in it, key events."""
    kpis = dict(await conn.fetchrow(KPIS, start, end))
    open_at_end = await conn.fetch(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE created_at < $1 "
        "AND (resolved_at IS NULL OR resolved_at >= $1) AND state IN ('new', 'assigned', 'in_progress') "
        "ORDER BY (severity = 'critical') DESC, id",
        end,
    )
    worked = await conn.fetch(
        f"SELECT {INCIDENT_COLUMNS}, "
        "(SELECT count(*) FROM incident_events e WHERE e.incident_id = i.id AND e.time >= $1 AND e.time < $2 "
        " AND e.kind = 'step') AS steps_done, "
        "(SELECT count(*) FROM incident_events e WHERE e.incident_id = i.id AND e.time >= $1 AND e.time < $2 "
        " AND e.kind = 'note') AS notes "
        "FROM incidents i WHERE EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id "
        "AND e.time >= $1 AND e.time < $2) ORDER BY id",
        start,
        end,
    )
    events = await conn.fetch(
        "SELECT e.time, e.incident_id, i.title AS incident_title, e.kind, e.actor, e.detail FROM incident_events e "
        "JOIN incidents i ON i.id = e.incident_id WHERE e.time >= $1 AND e.time < $2 AND e.kind = ANY($3::text[]) "
        "ORDER BY e.time, e.id LIMIT $4",
        start,
        end,
        list(KEY_EVENTS),
        limit,
    )
    return {
        "from": start,
        "to": end,
        "kpis": kpis,
        "open": [dict(r) for r in open_at_end],
        "worked": [dict(r) for r in worked],
        "events": [dict(r) for r in events],
    }

"""The open incidents as the wall and the tablet show them, and the escalations still waiting for an answer.

The live server's ``incidents`` channel is this board (``dashboards.live_state``), refreshed on every
``NOTIFY ioc_incidents`` (each timeline entry sends one, ``store.event``). An escalation stays on the board
while its limit is still unmet: an ``acknowledge`` one until someone takes or assigns the incident, a
``resolve`` one until it is resolved.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import asyncpg

from incidents.store import OPEN_STATES

Row = dict[str, Any]
SHOWN = 500  # open incidents on the board at most (most severe, then newest, first)

OPEN = """
SELECT i.id, i.type, i.procedure -> 'name' AS type_name, i.title, i.severity, i.state, i.lat, i.lon, i.zone,
       i.assignee, i.team, i.created_at, i.acknowledged_at,
       (SELECT count(*) FROM incident_alerts ia WHERE ia.incident_id = i.id) AS alerts
FROM incidents i WHERE i.state = ANY($1::text[])
ORDER BY (i.severity = 'critical') DESC, i.id DESC LIMIT $2
"""
ESCALATED = """
SELECT e.incident_id, e.time, e.detail, i.title, i.type, i.procedure -> 'name' AS type_name, i.severity, i.zone,
       i.assignee, i.team, i.created_at
FROM incident_events e JOIN incidents i ON i.id = e.incident_id
WHERE e.kind = 'escalation' AND i.state = ANY($1::text[])
  AND (e.detail ->> 'limit' <> 'acknowledge' OR i.acknowledged_at IS NULL)
ORDER BY e.time DESC, e.id DESC
"""


def escalation_item(row: asyncpg.Record | Row) -> Row:
    """An escalation as the board shows it: which incident, which limit, when it was due (how late is now - due)."""
    detail = row["detail"]
    minutes = float(detail.get("minutes", 0))
    return {
        "key": f"{row['incident_id']}:{detail.get('limit')}",
        "incident_id": row["incident_id"],
        "title": row["title"],
        "type": row["type"],
        "type_name": row["type_name"],
        "severity": row["severity"],
        "zone": row["zone"],
        "assignee": row["assignee"],
        "team": row["team"],
        "limit": detail.get("limit"),
        "minutes": minutes,
        "due_at": row["created_at"] + timedelta(minutes=minutes),
        "escalated_at": row["time"],
        "addressed_to": detail.get("addressed_to", "supervisor"),
    }


async def load(conn: asyncpg.Connection) -> Row:
    """The board: open incidents (most severe, newest first) and the pending escalations (newest first)."""
    incidents = [dict(r) for r in await conn.fetch(OPEN, list(OPEN_STATES), SHOWN)]
    escalations = [escalation_item(r) for r in await conn.fetch(ESCALATED, list(OPEN_STATES))]
    late = {e["incident_id"] for e in escalations}
    for incident in incidents:
        incident["escalated"] = incident["id"] in late
    return {"incidents": incidents, "escalations": escalations}


def open_counts(incidents: list[Row], zone_ids: list[str]) -> Row:
    """Open incidents by severity and by zone (each zone with its count per severity), for the tablet."""
    by_severity = Counter(i["severity"] for i in incidents)
    zones: dict[str | None, Counter[str]] = {z: Counter() for z in zone_ids}
    for incident in incidents:
        zones.setdefault(incident["zone"], Counter())[incident["severity"]] += 1
    return {
        "total": len(incidents),
        "by_severity": {"critical": by_severity["critical"], "warning": by_severity["warning"]},
        "by_zone": [
            {"zone_id": z, "critical": c["critical"], "warning": c["warning"], "total": c.total()}
            for z, c in zones.items()
            if c.total()
        ],
    }

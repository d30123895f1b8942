"""Time limits: an open incident not acknowledged, or not resolved, within its procedure's limit is escalated.

Run by the alert engine's leader after each round (so once across all server processes). An escalation is
addressed to the supervisor role: a timeline entry (``escalation``), an audit row (``incident.escalate``,
actor ``engine``) and, when a field team holds the incident, its notifications (``incidents.notify``),
made once per limit and incident. The wall shows it (``incidents.board``) until the limit is met; the
incident carries it in ``escalations`` (the console marks it overdue). Users have no contact addresses, so
supervisors are not notified individually: they see it on the wall and the console.
"""

from __future__ import annotations

import logging

import asyncpg

from incidents import notify, store
from incidents.procedures import overdue
from ioc import audit

logger = logging.getLogger(__name__)

SUPERVISOR = "supervisor"  # the role escalations are addressed to (ioc.accounts.ROLES)

OPEN = """
SELECT i.id, i.severity, i.procedure, i.team, i.acknowledged_at IS NOT NULL AS acknowledged,
       extract(epoch FROM now() - i.created_at) / 60 AS age_min,
       array_remove(array_agg(e.detail ->> 'limit'), NULL) AS escalated
FROM incidents i LEFT JOIN incident_events e ON e.incident_id = i.id AND e.kind = 'escalation'
WHERE i.state IN ('new', 'assigned', 'in_progress') AND i.procedure ? 'limits'
GROUP BY i.id
"""


async def escalate_overdue(conn: asyncpg.Connection) -> list[tuple[int, str]]:
    """Escalate every open incident past a limit it was not escalated for; returns (incident, limit) pairs."""
    done = []
    for row in await conn.fetch(OPEN):
        passed = overdue(row["procedure"], row["severity"], float(row["age_min"]), row["acknowledged"], False)
        for limit, minutes in passed:
            if limit in row["escalated"]:
                continue
            late_min = round(float(row["age_min"]) - minutes, 2)
            detail = {
                "limit": limit,
                "minutes": minutes,
                "severity": row["severity"],
                "late_min": late_min,
                "addressed_to": SUPERVISOR,
            }
            async with conn.transaction():
                await store.event(conn, row["id"], "escalation", store.ENGINE, detail)
                await audit.record(conn, store.ENGINE, "incident.escalate", str(row["id"]), "success", "", detail)
                if row["team"]:
                    await notify.enqueue(conn, row["id"], row["team"], "incident.escalated")
            logger.warning(
                "incident %s escalated to supervisors: not %sd within %g min (%.1f min late)",
                row["id"],
                limit,
                minutes,
                late_min,
            )
            done.append((row["id"], limit))
    return done

"""Monthly statistics per zone and incident type: alerts, incidents, mean times to acknowledge and resolve,
time limits passed; a month runs from its first midnight to the next in the city's time (Asia/Ho_Chi_Minh).

The figures follow the shift handover's definitions (``incidents.handover``): the time to acknowledge counts
incidents created in the month, the time to resolve incidents resolved in it, a breach is an escalation
made in it. An alert counts under the incident type its rule groups into (the procedures' ``grouping.rules``);
alerts of rules that make no incidents (a device offline) count under no type (``type`` null).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from incidents.procedures import Procedure

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MONTH_RE = re.compile(r"^(?P<year>20\d\d)-(?P<month>0[1-9]|1[0-2])\Z")
Row = dict[str, Any]

STATS = """
WITH types(rule, type) AS (SELECT * FROM unnest($3::text[], $4::text[])),
a AS (
  SELECT a.zone, t.type, count(*) AS alerts FROM alerts a LEFT JOIN types t ON t.rule = a.rule
  WHERE a.opened_at >= $1 AND a.opened_at < $2 GROUP BY 1, 2),
c AS (
  SELECT zone, type, count(*) AS incidents,
         avg(extract(epoch FROM acknowledged_at - created_at))::float8 AS mean_acknowledge_s
  FROM incidents WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2),
r AS (
  SELECT zone, type, count(*) AS resolved, avg(extract(epoch FROM resolved_at - created_at))::float8 AS mean_resolve_s
  FROM incidents WHERE resolved_at >= $1 AND resolved_at < $2 GROUP BY 1, 2),
b AS (
  SELECT i.zone, i.type, count(*) AS breaches FROM incident_events e JOIN incidents i ON i.id = e.incident_id
  WHERE e.kind = 'escalation' AND e.time >= $1 AND e.time < $2 GROUP BY 1, 2),
k AS (SELECT zone, type FROM a UNION SELECT zone, type FROM c UNION SELECT zone, type FROM r
      UNION SELECT zone, type FROM b)
SELECT k.zone, z.name AS zone_name, z.metadata ->> 'name_en' AS zone_name_en, k.type,
       coalesce(a.alerts, 0) AS alerts, coalesce(c.incidents, 0) AS incidents, coalesce(r.resolved, 0) AS resolved,
       c.mean_acknowledge_s, r.mean_resolve_s, coalesce(b.breaches, 0) AS breaches
FROM k LEFT JOIN zones z ON z.zone_id = k.zone
LEFT JOIN a ON a.zone IS NOT DISTINCT FROM k.zone AND a.type IS NOT DISTINCT FROM k.type
LEFT JOIN c ON c.zone IS NOT DISTINCT FROM k.zone AND c.type IS NOT DISTINCT FROM k.type
LEFT JOIN r ON r.zone IS NOT DISTINCT FROM k.zone AND r.type IS NOT DISTINCT FROM k.type
LEFT JOIN b ON b.zone IS NOT DISTINCT FROM k.zone AND b.type IS NOT DISTINCT FROM k.type
ORDER BY z.name NULLS LAST, k.zone NULLS LAST, k.type NULLS LAST
"""
TOTALS = """
SELECT (SELECT count(*) FROM alerts WHERE opened_at >= $1 AND opened_at < $2) AS alerts,
  (SELECT count(*) FROM incidents WHERE created_at >= $1 AND created_at < $2) AS incidents,
  (SELECT count(*) FROM incidents WHERE resolved_at >= $1 AND resolved_at < $2) AS resolved,
  (SELECT avg(extract(epoch FROM acknowledged_at - created_at))::float8 FROM incidents
    WHERE created_at >= $1 AND created_at < $2) AS mean_acknowledge_s,
  (SELECT avg(extract(epoch FROM resolved_at - created_at))::float8 FROM incidents
    WHERE resolved_at >= $1 AND resolved_at < $2) AS mean_resolve_s,
  (SELECT count(*) FROM incident_events WHERE kind = 'escalation' AND time >= $1 AND time < $2) AS breaches
"""
CSV_COLUMNS = (
    "month",
    "zone_id",
    "zone",
    "type",
    "type_name",
    "alerts",
    "incidents",
    "resolved",
    "mean_acknowledge_s",
    "mean_resolve_s",
    "breaches",
)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The month ``YYYY-MM`` as [start, end) in UTC, its days counted in the city's time; ValueError if malformed."""
    found = MONTH_RE.match(month)
    if found is None:
        raise ValueError(f"month must be YYYY-MM (2000-2099), got {month!r}")
    year, number = int(found["year"]), int(found["month"])
    start = datetime(year, number, 1, tzinfo=CITY_TZ)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=CITY_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


async def monthly(conn: asyncpg.Connection, month: str, procedures: list[Procedure]) -> Row:
    """The month's figures per zone and type, and for the whole city."""
    start, end = month_bounds(month)
    pairs = [(rule, p.type) for p in procedures for rule in p.grouping.rules]
    names = {p.type: p.name.model_dump() for p in procedures}
    rows = await conn.fetch(STATS, start, end, [r for r, _ in pairs], [t for _, t in pairs])
    totals = dict(await conn.fetchrow(TOTALS, start, end))
    items = [{**dict(r), "type_name": names.get(r["type"])} for r in rows]
    return {"month": month, "timezone": str(CITY_TZ), "from": start, "to": end, "rows": items, "totals": totals}


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def to_csv(stats: Row, lang: str = "vi") -> str:
    """The figures as CSV (a header line, then one line per zone and type), zone names as the city writes them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in stats["rows"]:
        zone = (row["zone_name_en"] if lang == "en" else None) or row["zone_name"] or row["zone"] or ""
        type_name = (row["type_name"] or {}).get(lang, "")
        writer.writerow(
            (
                stats["month"],
                row["zone"] or "",
                zone,
                row["type"] or "",
                type_name,
                row["alerts"],
                row["incidents"],
                row["resolved"],
                _seconds(row["mean_acknowledge_s"]),
                _seconds(row["mean_resolve_s"]),
                row["breaches"],
            )
        )
    return out.getvalue()

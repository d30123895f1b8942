"""Alerts become incidents: the grouping rule, applied by the alert engine's leader after each round.

An active alert of a rule that an incident type lists (``grouping.rules`` in sop/TYPE.yaml) and that no
incident holds yet joins the nearest open incident of that type whose location is within ``radius_m`` of
the alert's device and whose newest alert is at most ``window_min`` older than it; otherwise it opens a
new incident at its device's location. A device without coordinates groups by zone instead. An alert
that escalates raises its incident's severity (never lowers it: an operator's change stands until an
alert rises above it). Running once per engine round, by the one leader, means no two processes group
at once, and an alert opened by a previous leader is picked up by the next round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from incidents import store
from incidents.geo import haversine_m
from incidents.procedures import Catalogue, Grouping
from ioc import audit

logger = logging.getLogger(__name__)

PENDING = """
SELECT a.id, a.rule, a.device_id, a.zone, a.severity, a.title, a.opened_at, d.lat, d.lon
FROM alerts a
LEFT JOIN incident_alerts ia ON ia.alert_id = a.id
LEFT JOIN devices d ON d.device_id = a.device_id
WHERE a.state <> 'resolved' AND ia.alert_id IS NULL AND a.rule = ANY($1::text[])
ORDER BY a.id
"""
CANDIDATES = """
SELECT id, lat, lon, zone, coalesce(last_alert_at, created_at) AS last_alert_at
FROM incidents WHERE state IN ('new', 'assigned', 'in_progress') AND type = $1
"""
ESCALATED = """
SELECT ia.alert_id, ia.incident_id, a.severity FROM incident_alerts ia
JOIN alerts a ON a.id = ia.alert_id JOIN incidents i ON i.id = ia.incident_id
WHERE a.severity <> ia.severity AND i.state IN ('new', 'assigned', 'in_progress')
ORDER BY ia.alert_id
"""


@dataclass(frozen=True, slots=True)
class Place:
    """Where and when: an alert's device, or an open incident with its newest alert."""

    lat: float | None
    lon: float | None
    zone: str | None
    time: datetime


def choose(alert: Place, incidents: dict[int, Place], rule: Grouping) -> int | None:
    """The incident ``alert`` joins under ``rule`` (the nearest within the radius and window), or None."""
    ranked: list[tuple[float, int]] = []  # (distance, -id): the nearest, then the newest
    for incident_id, place in incidents.items():
        if alert.time - place.time > timedelta(minutes=rule.window_min):
            continue
        if alert.lat is None or alert.lon is None or place.lat is None or place.lon is None:
            if alert.zone is None or alert.zone != place.zone:
                continue
            distance = rule.radius_m  # same zone, location unknown: after any incident known to be in range
        else:
            distance = haversine_m(alert.lat, alert.lon, place.lat, place.lon)
            if distance > rule.radius_m:
                continue
        ranked.append((distance, -incident_id))
    return -min(ranked)[1] if ranked else None


async def group_alerts(conn: asyncpg.Connection, catalogue: Catalogue) -> int:
    """Put every ungrouped active alert into an incident and raise incidents whose alerts escalated.

    Returns how many alerts were grouped.
    """
    catalogue.refresh()
    rules = sorted({r for p in catalogue.procedures.values() for r in p.grouping.rules})
    grouped = 0
    if rules:
        for alert in await conn.fetch(PENDING, rules):
            procedure = catalogue.for_rule(alert["rule"])
            if procedure is None:
                continue
            candidates = {
                r["id"]: Place(r["lat"], r["lon"], r["zone"], r["last_alert_at"])
                for r in await conn.fetch(CANDIDATES, procedure.type)
            }
            place = Place(alert["lat"], alert["lon"], alert["zone"], alert["opened_at"])
            incident_id = choose(place, candidates, procedure.grouping)
            async with conn.transaction():  # a new incident and its first alert, or neither
                if incident_id is None:
                    incident_id = await store.create(
                        conn,
                        procedure,
                        title=alert["title"],
                        severity=alert["severity"],
                        lat=alert["lat"],
                        lon=alert["lon"],
                        zone=alert["zone"],
                        actor=store.ENGINE,
                        origin="alerts",
                    )
                    await audit.record(
                        conn, store.ENGINE, "incident.create", str(incident_id), "success", "", {"alert": alert["id"]}
                    )
                await _join(conn, incident_id, alert)
            grouped += 1
    for row in await conn.fetch(ESCALATED):
        await _escalate(conn, row["incident_id"], row["alert_id"], row["severity"])
    return grouped


async def _join(conn: asyncpg.Connection, incident_id: int, alert: asyncpg.Record) -> None:
    async with conn.transaction():
        incident = await conn.fetchrow("SELECT severity FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
        await conn.execute(
            "INSERT INTO incident_alerts (alert_id, incident_id, severity) VALUES ($1, $2, $3)",
            alert["id"],
            incident_id,
            alert["severity"],
        )
        await conn.execute(
            "UPDATE incidents SET last_alert_at = greatest(last_alert_at, $2), updated_at = now() WHERE id = $1",
            incident_id,
            alert["opened_at"],
        )
        await store.event(
            conn,
            incident_id,
            "alert",
            store.ENGINE,
            {
                "alert_id": alert["id"],
                "title": alert["title"],
                "device_id": alert["device_id"],
                "severity": alert["severity"],
            },
        )
        await audit.record(
            conn, store.ENGINE, "incident.alert_joined", str(incident_id), "success", "", {"alert": alert["id"]}
        )
        if store.raises_severity(incident["severity"], alert["severity"]):
            await _raise(conn, incident_id, incident["severity"], alert["severity"], alert["id"])
    logger.info("alert %s joined incident %s", alert["id"], incident_id)


async def _escalate(conn: asyncpg.Connection, incident_id: int, alert_id: int, severity: str) -> None:
    async with conn.transaction():
        incident = await conn.fetchrow("SELECT severity FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
        await conn.execute("UPDATE incident_alerts SET severity = $2 WHERE alert_id = $1", alert_id, severity)
        if store.raises_severity(incident["severity"], severity):
            await _raise(conn, incident_id, incident["severity"], severity, alert_id)


async def _raise(conn: asyncpg.Connection, incident_id: int, current: str, severity: str, alert_id: int) -> None:
    """Raise the incident to an alert's severity (a change operators may collide with: version + 1)."""
    await conn.execute(
        "UPDATE incidents SET severity = $2, version = version + 1, updated_at = now(), updated_by = $3 WHERE id = $1",
        incident_id,
        severity,
        store.ENGINE,
    )
    await store.event(
        conn, incident_id, "severity", store.ENGINE, {"from": current, "to": severity, "alert_id": alert_id}
    )
    await audit.record(
        conn,
        store.ENGINE,
        "incident.severity",
        str(incident_id),
        "success",
        "",
        {"from": current, "to": severity, "alert": alert_id},
    )
    logger.info("incident %s raised to %s by alert %s", incident_id, severity, alert_id)

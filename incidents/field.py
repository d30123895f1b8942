"""Field links: a team member opens one incident on a phone through a link that expires, and can add to it.

A link is a random token (256 bits) given once; the database keeps only its SHA-256, like sessions and API
keys. It grants exactly one incident and exactly these: read the incident (title, state, severity, place,
procedure, the nearby cameras and what the field posted), post a note, post a photo. It ends when it
expires (``IOC_FIELD_LINK_HOURS``, 12 by default) or an operator revokes it; either way the page says so
(410), an unknown token is a 404, and neither shows anything of any incident.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from incidents import store
from incidents.nearby import nearby_devices
from incidents.procedures import applicable_steps

logger = logging.getLogger(__name__)

TOKEN_RE = r"^[A-Za-z0-9_-]{32,64}$"
CAMERA_RADIUS_M = 500.0


class LinkUnknown(LookupError):
    """No link has this token."""


class LinkGone(Exception):
    """The link existed but has expired or was revoked; the message says which and when."""


@dataclass(frozen=True, slots=True)
class Link:
    """A live field link: which incident, for which team, until when."""

    id: int
    incident_id: int
    team: str | None
    expires_at: datetime

    @property
    def actor(self) -> str:
        """Who the link's posts are by, in the timeline and the audit log."""
        return f"{self.team or 'field'} (link {self.id})"


def new_token() -> str:
    """A fresh link token (URL-safe, 43 characters)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def path(token: str) -> str:
    """The page of a link, from the site's root."""
    return f"/field/{token}"


async def insert(
    conn: asyncpg.Connection, incident_id: int, token: str, actor: str, *, ttl: timedelta, team: str | None
) -> tuple[int, datetime]:
    """Store a link for ``token`` and its timeline entry (inside the caller's change); returns (id, expires_at)."""
    row = await conn.fetchrow(
        "INSERT INTO field_links (incident_id, token_sha256, team, created_by, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id, expires_at",
        incident_id,
        digest(token),
        team,
        actor,
        ttl.total_seconds(),
    )
    detail = {"action": "created", "link_id": row["id"], "team": team, "expires_at": row["expires_at"].isoformat()}
    await store.event(conn, incident_id, "field_link", actor, detail)
    return int(row["id"]), row["expires_at"]


async def create(
    conn: asyncpg.Connection, incident_id: int, actor: str, *, ttl: timedelta, team: str | None
) -> tuple[str, int, datetime]:
    """A new link to the incident (for ``team``, when given); returns (token, id, expires_at)."""
    token = new_token()
    async with conn.transaction():
        if not await conn.fetchval("SELECT true FROM incidents WHERE id = $1 FOR UPDATE", incident_id):
            raise store.IncidentNotFound(f"incident {incident_id} not found")
        if team is not None and not await conn.fetchval("SELECT enabled FROM field_teams WHERE team_id = $1", team):
            raise store.InvalidInput(f"{team!r} is not an active field team")
        link_id, expires_at = await insert(conn, incident_id, token, actor, ttl=ttl, team=team)
    logger.info("incident %s: field link %s made by %s (expires %s)", incident_id, link_id, actor, expires_at)
    return token, link_id, expires_at


async def revoke(conn: asyncpg.Connection, incident_id: int, link_id: int, actor: str) -> None:
    """End a link of the incident now."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE field_links SET revoked_at = now(), revoked_by = $3 "
            "WHERE id = $1 AND incident_id = $2 AND revoked_at IS NULL RETURNING id",
            link_id,
            incident_id,
            actor,
        )
        if row is None:
            known = await conn.fetchval(
                "SELECT true FROM field_links WHERE id = $1 AND incident_id = $2", link_id, incident_id
            )
            if known:
                raise store.IncidentConflict(f"field link {link_id} is already revoked")
            raise store.InvalidInput(f"incident {incident_id} has no field link {link_id}")
        await store.event(conn, incident_id, "field_link", actor, {"action": "revoked", "link_id": link_id})
    logger.info("incident %s: field link %s revoked by %s", incident_id, link_id, actor)


async def links(conn: asyncpg.Connection, incident_id: int) -> list[dict[str, Any]]:
    """The incident's links, newest first (never their tokens)."""
    rows = await conn.fetch(
        "SELECT id, team, created_by, created_at, expires_at, revoked_at, revoked_by, last_used_at, "
        "(revoked_at IS NULL AND expires_at > now()) AS live FROM field_links WHERE incident_id = $1 ORDER BY id DESC",
        incident_id,
    )
    return [dict(r) for r in rows]


async def resolve(conn: asyncpg.Connection, token: str) -> Link:
    """The live link of ``token``; ``LinkUnknown`` or ``LinkGone`` (expired, revoked) otherwise."""
    row = await conn.fetchrow(
        "UPDATE field_links SET last_used_at = now() WHERE token_sha256 = $1 "
        "RETURNING id, incident_id, team, expires_at, revoked_at, expires_at <= now() AS expired",
        digest(token),
    )
    if row is None:
        raise LinkUnknown("this link is not known: ask the operations centre for a new one")
    if row["revoked_at"] is not None:
        raise LinkGone(f"this link was revoked at {row['revoked_at']:%Y-%m-%d %H:%M} UTC")
    if row["expired"]:
        raise LinkGone(f"this link expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC")
    return Link(int(row["id"]), int(row["incident_id"]), row["team"], row["expires_at"])


async def view(conn: asyncpg.Connection, link: Link) -> dict[str, Any]:
    """What the link shows: the incident's essentials, its procedure (read only) and what the field posted."""
    row = await conn.fetchrow(
        "SELECT id, type, title, severity, state, lat, lon, zone, team, created_at, procedure "
        "FROM incidents WHERE id = $1",
        link.incident_id,
    )
    done = {
        r["step"]: r
        for r in await conn.fetch("SELECT step, done_at FROM incident_steps WHERE incident_id = $1", link.incident_id)
    }
    procedure = row["procedure"]
    steps = [
        {
            "id": s["id"],
            "text": s["text"],
            "required": s.get("required", True),
            "done_at": done.get(s["id"], {}).get("done_at"),
        }
        for s in applicable_steps(procedure, row["severity"])
    ]
    posted = await conn.fetch(
        "SELECT time, kind, actor, detail FROM incident_events WHERE incident_id = $1 "
        "AND ((kind = 'note' AND detail ->> 'via' = 'field') OR kind = 'photo') ORDER BY id DESC LIMIT 50",
        link.incident_id,
    )
    incident = {
        k: row[k] for k in ("id", "type", "title", "severity", "state", "lat", "lon", "zone", "team", "created_at")
    }
    return {
        "incident": {**incident, "type_name": procedure.get("name")},
        "steps": steps,
        "posted": [{"time": p["time"], "kind": p["kind"], "actor": p["actor"], **p["detail"]} for p in posted],
        "link": {"team": link.team, "expires_at": link.expires_at},
    }


async def cameras(conn: asyncpg.Connection, link: Link) -> list[dict[str, Any]]:
    """The cameras within 500 m of the link's incident, nearest first, with their snapshot times."""
    row = await conn.fetchrow("SELECT lat, lon FROM incidents WHERE id = $1", link.incident_id)
    if row["lat"] is None or row["lon"] is None:
        return []
    found = await nearby_devices(conn, row["lat"], row["lon"], radius_m=CAMERA_RADIUS_M, kinds=("camera",))
    snaps = {
        r["device_id"]: r["time"]
        for r in await conn.fetch(
            "SELECT device_id, time FROM snapshots WHERE device_id = ANY($1::text[])", [c["device_id"] for c in found]
        )
    }
    keep = ("device_id", "name", "distance_m", "direction", "bearing_deg")
    return [{**{k: c[k] for k in keep}, "snapshot_at": snaps.get(c["device_id"])} for c in found]


async def add_note(conn: asyncpg.Connection, link: Link, text: str) -> None:
    """A note from the field in the incident's timeline (kind ``note``, ``via: field``)."""
    async with conn.transaction():
        await conn.execute("UPDATE incidents SET updated_at = now() WHERE id = $1", link.incident_id)
        await store.event(
            conn, link.incident_id, "note", link.actor, {"text": text, "via": "field", "link_id": link.id}
        )

"""Pictures kept with an incident: photos posted from the field and camera snapshots pinned by an operator.

Each is a copy in ``incident_media`` (the incident's, deleted only with it), so a pinned snapshot outlives
the camera's own (which the next picture from the camera replaces), and one timeline entry (``photo`` or
``pin``) that names it. Photos arrive here already cleaned (incidents.photos).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import asyncpg

from incidents import photos, store

logger = logging.getLogger(__name__)

MAX_CAPTION = 500


class NoSnapshot(store.InvalidInput):
    """The device has no snapshot to pin."""


async def _add(
    conn: asyncpg.Connection,
    incident_id: int,
    kind: str,
    actor: str,
    content_type: str,
    data: bytes,
    *,
    detail: dict[str, Any],
    device_id: str | None = None,
    taken_at: datetime | None = None,
    caption: str | None = None,
) -> int:
    """Store one picture with its timeline entry (``kind``: photo or pin), in one transaction; returns its id."""
    async with conn.transaction():
        found = await conn.fetchval("SELECT id FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
        if found is None:
            raise store.IncidentNotFound(f"incident {incident_id} not found")
        media_id: int = await conn.fetchval(
            "INSERT INTO incident_media (incident_id, kind, content_type, data, device_id, taken_at, caption, "
            "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            incident_id,
            kind,
            content_type,
            data,
            device_id,
            taken_at,
            caption,
            actor,
        )
        await conn.execute("UPDATE incidents SET updated_at = now() WHERE id = $1", incident_id)
        entry = {"media_id": media_id, "bytes": len(data), **detail}
        if caption:
            entry["caption"] = caption
        await store.event(conn, incident_id, kind, actor, entry)
    logger.info("incident %s: %s %s (%d bytes) by %s", incident_id, kind, media_id, len(data), actor)
    return media_id


async def add_photo(
    conn: asyncpg.Connection,
    incident_id: int,
    actor: str,
    content_type: str,
    data: bytes,
    caption: str | None,
    detail: dict[str, Any],
) -> int:
    """Keep a (cleaned) photo with the incident; returns its id."""
    return await _add(conn, incident_id, "photo", actor, content_type, data, detail=detail, caption=caption)


async def pin_snapshot(conn: asyncpg.Connection, incident_id: int, actor: str, device_id: str) -> int:
    """Copy the device's latest snapshot into the incident; returns the pinned picture's id."""
    shot = await conn.fetchrow(
        "SELECT s.time, s.content_type, s.data, d.name FROM snapshots s LEFT JOIN devices d USING (device_id) "
        "WHERE s.device_id = $1",
        device_id,
    )
    if shot is None:
        raise NoSnapshot(f"device {device_id!r} has no snapshot to pin")
    try:
        content_type = photos.sniff(bytes(shot["data"]))
    except photos.PhotoError as exc:
        raise NoSnapshot(f"the snapshot of {device_id!r} is not a JPEG or PNG picture") from exc
    detail = {"device_id": device_id, "device_name": shot["name"] or device_id, "taken_at": shot["time"].isoformat()}
    return await _add(
        conn,
        incident_id,
        "pin",
        actor,
        content_type,
        bytes(shot["data"]),
        detail=detail,
        device_id=device_id,
        taken_at=shot["time"],
    )


async def get(conn: asyncpg.Connection, incident_id: int, media_id: int) -> asyncpg.Record | None:
    """One picture of the incident (None when the incident has no picture of that id)."""
    return await conn.fetchrow(
        "SELECT id, kind, content_type, data, created_at FROM incident_media WHERE id = $1 AND incident_id = $2",
        media_id,
        incident_id,
    )

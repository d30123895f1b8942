"""``/api/v1/quarantine`` (admin): recently rejected messages, payloads shown safely."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query

from dashboards.api.deps import AdminDep, ConnDep
from dashboards.encoding import iso

router = APIRouter(tags=["quarantine"])
PREVIEW_BYTES = 2048


def escape(payload: bytes) -> str:
    """Bytes as readable text: invalid UTF-8 and control characters become ``\\xNN`` escapes."""
    text = payload.decode("utf-8", errors="backslashreplace")
    return "".join(
        c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
        for c in text
    )


@router.get("/quarantine")
async def list_quarantine(
    admin: AdminDep, conn: ConnDep, reason: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Rejected messages newest first: payload as escaped text and base64 (first 2 KiB); admins only.

    ``items`` are the samples kept (``size`` as received; the stored payload may be cut to the sample size);
    ``overflow`` counts the messages past each device's sample budget, per reason and window.
    """
    rows = await conn.fetch(
        "SELECT id, received_at, topic, reason, detail, device_id, "
        "COALESCE(payload_bytes, length(payload)) AS size, "
        f"substring(payload FROM 1 FOR {PREVIEW_BYTES}) AS head FROM quarantine "
        "WHERE ($1::text IS NULL OR reason = $1) ORDER BY received_at DESC, id DESC LIMIT $2",
        reason,
        limit,
    )
    items = []
    for r in rows:
        head = bytes(r["head"])
        items.append(
            {
                "id": r["id"],
                "received_at": iso(r["received_at"]),
                "topic": r["topic"],
                "reason": r["reason"],
                "detail": r["detail"],
                "device_id": r["device_id"],
                "size": r["size"],
                "truncated": r["size"] > len(head),
                "payload_text": escape(head),
                "payload_base64": base64.b64encode(head).decode("ascii"),
            }
        )
    overflow = await conn.fetch(
        "SELECT device_id, reason, window_start, messages, bytes, first_at, last_at, last_topic "
        "FROM quarantine_overflow WHERE ($1::text IS NULL OR reason = $1) ORDER BY last_at DESC LIMIT $2",
        reason,
        limit,
    )
    counted = [
        {
            "device_id": r["device_id"] or None,
            "reason": r["reason"],
            "window_start": iso(r["window_start"]),
            "messages": r["messages"],
            "bytes": r["bytes"],
            "first_at": iso(r["first_at"]),
            "last_at": iso(r["last_at"]),
            "last_topic": r["last_topic"],
        }
        for r in overflow
    ]
    return {"items": items, "overflow": counted}

"""``/api/v1/summary`` and ``/api/v1/events``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from dashboards import queries
from dashboards.api.deps import ConnDep, HubDep

router = APIRouter(tags=["summary"])


@router.get("/summary")
async def get_summary(hub: HubDep) -> dict[str, Any]:
    """The city summary: the same data as the websocket channel ``summary``."""
    return hub.view("summary")


@router.get("/events")
async def list_events(
    conn: ConnDep,
    type: str | None = None,
    device_id: str | None = None,
    zone: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Events newest first, filtered by type, device, zone and time."""
    items = await queries.load_events(conn, type=type, device_id=device_id, zone=zone, since=since, limit=limit)
    return {"items": items}

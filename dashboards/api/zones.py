"""``/api/v1/zones``: zones with their summary line, and one zone's full view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dashboards.api.deps import HubDep
from dashboards.api.errors import not_found
from dashboards.live_state import META

router = APIRouter(tags=["zones"])


@router.get("/zones")
async def list_zones(hub: HubDep) -> dict[str, Any]:
    """Every zone with its live summary (state, flood, traffic, incidents, alerts, device counts)."""
    items = hub.live.zone_summaries()
    return {"items": items, "total": len(items), "meta": META}


@router.get("/zones/{zone_id}")
async def get_zone(zone_id: str, hub: HubDep) -> dict[str, Any]:
    """One zone: the same data as the websocket channel ``zone:{zone_id}``."""
    if not hub.live.channel_exists(f"zone:{zone_id}"):
        raise not_found(f"zone {zone_id!r}")
    return hub.view(f"zone:{zone_id}")

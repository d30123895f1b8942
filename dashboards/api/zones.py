"""``/api/v1/zones``: zones with their summary line, and one zone's full view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dashboards import aggregates as agg
from dashboards.api.deps import HubDep
from dashboards.api.errors import not_found
from dashboards.views import META

router = APIRouter(tags=["zones"])


@router.get("/zones")
async def list_zones(hub: HubDep) -> dict[str, Any]:
    """Every zone with its live summary (state, flood, traffic, incidents, alerts, device counts)."""
    live = hub.live
    items = []
    for zone in live.zones.values():
        devices = [d for d in live.devices.values() if d["zone"] == zone["zone_id"]]
        alerts = [a for a in live.alerts.values() if a["zone"] == zone["zone_id"]]
        items.append(agg.zone_summary(zone, devices, alerts, live.incidents.get(zone["zone_id"], 0)))
    return {"items": items, "total": len(items), "meta": META}


@router.get("/zones/{zone_id}")
async def get_zone(zone_id: str, hub: HubDep) -> dict[str, Any]:
    """One zone: the same data as the websocket channel ``zone:{zone_id}``."""
    if zone_id not in hub.live.zones:
        raise not_found(f"zone {zone_id!r}")
    return hub.view(f"zone:{zone_id}")

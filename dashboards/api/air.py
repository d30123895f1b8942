"""``/api/v1/air``: the city's air quality (VN_AQI) now, and a sensor's or zone's hourly index history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from dashboards import air, queries
from dashboards.api.deps import ConnDep, HubDep
from dashboards.api.errors import not_found
from dashboards.live_state import META
from ioc import aqi

router = APIRouter(tags=["air"])

HistoryHours = Annotated[int, Query(ge=1, le=48)]


@router.get("/air")
async def get_air(hub: HubDep) -> dict[str, Any]:
    """City and zone indices, worst sensors, dominant pollutants, every sensor: the websocket channel ``air``."""
    return hub.view("air")


async def _hours(conn: ConnDep, hours: int, device_ids: list[str]) -> tuple[datetime, dict[str, Any]]:
    at = datetime.now(UTC)
    return at, await queries.air_hours(conn, at, aqi.METRICS, hours + aqi.NOWCAST_HOURS - 1, air.KIND, device_ids)


@router.get("/air/devices/{device_id}")
async def get_air_device(device_id: str, conn: ConnDep, hours: HistoryHours = 24) -> dict[str, Any]:
    """One air sensor: its index now, its hourly means (newest first) and its hourly index over ``hours``."""
    found = await queries.load_devices(conn, kind=air.KIND, device_ids=[device_id])
    if not found:
        raise not_found(f"air sensor {device_id!r}")
    at, series = await _hours(conn, hours, [device_id])
    mine = series.get(device_id, {})
    return {
        "device": found[0],
        "now": air.sensor(mine),
        "hourly_means": {p: v[:hours] for p, v in mine.items()},
        "history": air.history(mine, at, hours),
        "meta": META,
    }


@router.get("/air/zones/{zone_id}")
async def get_air_zone(zone_id: str, hub: HubDep, conn: ConnDep, hours: HistoryHours = 24) -> dict[str, Any]:
    """One zone: its index now (from the live state) and each hour's index (its worst sensor) over ``hours``."""
    if not hub.live.channel_exists(f"zone:{zone_id}"):
        raise not_found(f"zone {zone_id!r}")
    ids = [d["device_id"] for d in hub.live.devices.values() if d["zone"] == zone_id and d["kind"] == air.KIND]
    at, series = await _hours(conn, hours, ids) if ids else (datetime.now(UTC), {})
    suspects = hub.live.air_suspects
    counted = [h for d, h in series.items() if d not in suspects]
    per_sensor = [air.history(h, at, hours) for h in counted]
    history = air.history({}, at, hours)  # the hours, without an index yet
    for k, hour in enumerate(history):
        values = [(s[k]["aqi"], s[k]["dominant"]) for s in per_sensor if s[k]["aqi"] is not None]
        if values:
            hour["aqi"], hour["dominant"] = max(values, key=lambda v: v[0])
    view = hub.view("air")
    zone = next((z for z in view["zones"] if z["zone_id"] == zone_id), None)
    points = [p for p in view["points"] if p["zone"] == zone_id]
    return {"zone": zone, "points": points, "history": history, "meta": META}

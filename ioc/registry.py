"""The device registry: importing fleets (zones and devices) into the database."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import asyncpg

from ioc.db import REGISTRY_CHANNEL

if TYPE_CHECKING:
    from ioc.fleet import Fleet

logger = logging.getLogger(__name__)

UPSERT_ZONE = """
INSERT INTO zones (zone_id, name, lat, lon, priority, metadata) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (zone_id) DO UPDATE SET name = EXCLUDED.name, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
  priority = EXCLUDED.priority, metadata = EXCLUDED.metadata
"""
UPSERT_DEVICE = """
INSERT INTO devices (device_id, kind, format, vendor, name, zone, lat, lon, interval_s, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind, format = EXCLUDED.format, vendor = EXCLUDED.vendor,
  name = EXCLUDED.name, zone = EXCLUDED.zone, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
  interval_s = EXCLUDED.interval_s, metadata = EXCLUDED.metadata, updated_at = now()
"""


async def import_fleet(conn: asyncpg.Connection, fleet: Fleet) -> tuple[int, int]:
    """Upsert the fleet's zones and devices in one transaction; return (zones, devices) counts."""
    async with conn.transaction():
        known = {r["zone_id"] for r in await conn.fetch("SELECT zone_id FROM zones")}
        await conn.executemany(
            UPSERT_ZONE, [(z.zone_id, z.name, z.lat, z.lon, z.priority, z.metadata) for z in fleet.zones]
        )
        known |= {z.zone_id for z in fleet.zones}
        await conn.executemany(
            UPSERT_DEVICE,
            [
                (
                    d.device_id,
                    d.kind,
                    d.format,
                    d.vendor,
                    d.name,
                    d.zone if d.zone in known else None,
                    d.lat,
                    d.lon,
                    d.interval_s,
                    d.metadata,
                )
                for d in fleet.devices
            ],
        )
        await conn.execute("SELECT pg_notify($1, 'import')", REGISTRY_CHANNEL)  # ingest workers reload the registry
    logger.info("fleet imported", extra={"zones": len(fleet.zones), "devices": len(fleet.devices)})
    return len(fleet.zones), len(fleet.devices)

"""The schema's shared pieces (the MetaData, the timestamp type) and the tables everything joins: zones, devices."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

TZ = DateTime(timezone=True)

zones = Table(
    "zones",
    metadata,
    Column("zone_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("priority", Boolean, nullable=False, server_default=text("false")),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("format", Text, nullable=False, server_default="canonical"),
    Column("vendor", Text, nullable=False, server_default=""),
    Column("name", Text, nullable=False),
    Column("zone", Text, ForeignKey("zones.zone_id", ondelete="SET NULL"), nullable=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("interval_s", Integer, nullable=False, server_default=text("60")),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # unknown (never heard from) | online | offline (said so, or its will did) | stale (silent too long)
    Column("status", Text, nullable=False, server_default="unknown"),
    Column("status_since", TZ, nullable=True),
    Column("status_at", TZ, nullable=True),  # newest status-bearing message: concurrent writers apply in time order
    Column("last_seen", TZ, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("updated_at", TZ, nullable=False, server_default=func.now()),
    Index("devices_kind_zone", "kind", "zone"),
    Index("devices_lat_lon", "lat", "lon"),  # the bounding box of incidents.nearby
)

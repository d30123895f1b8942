"""Foundation: zones, devices, measurements, events, quarantine, latest values, rollups, snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from ioc import timescale

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
EMPTY_JSON = sa.text("'{}'::jsonb")


def upgrade() -> None:
    """Create the foundation tables, hypertables where TimescaleDB is present."""
    bind = op.get_bind()
    timescale.enable(bind)
    op.create_table(
        "zones",
        sa.Column("zone_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("priority", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("metadata", JSONB, nullable=False, server_default=EMPTY_JSON),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("format", sa.Text, nullable=False, server_default="canonical"),
        sa.Column("vendor", sa.Text, nullable=False, server_default=""),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("zone", sa.Text, sa.ForeignKey("zones.zone_id", ondelete="SET NULL"), nullable=True),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("interval_s", sa.Integer, nullable=False, server_default=sa.text("60")),
        sa.Column("metadata", JSONB, nullable=False, server_default=EMPTY_JSON),
        sa.Column("status", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("status_since", TZ),
        sa.Column("status_at", TZ),  # time of the newest status-bearing message (orders concurrent writers)
        sa.Column("last_seen", TZ),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("devices_kind_zone", "devices", ["kind", "zone"])
    op.create_table(
        "measurements",
        sa.Column("time", TZ, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("part", sa.Text, nullable=False, server_default=""),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("seq", sa.BigInteger),
        sa.UniqueConstraint("device_id", "metric", "part", "time", name="measurements_key"),
    )
    op.create_table(
        "events",
        sa.Column("time", TZ, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("attrs", JSONB, nullable=False, server_default=EMPTY_JSON),
        sa.Column("received_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("device_id", "type", "time", name="events_key"),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("received_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("device_id", sa.Text),
    )
    op.create_index("quarantine_received", "quarantine", ["received_at"])
    op.create_index("quarantine_reason", "quarantine", ["reason", "received_at"])
    op.create_table(
        "latest_values",
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("part", sa.Text, nullable=False, server_default=""),
        sa.Column("time", TZ, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "metric", "part", name="latest_values_pkey"),
    )
    op.create_table(
        "rollups_1m",
        sa.Column("bucket", TZ, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("part", sa.Text, nullable=False, server_default=""),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.UniqueConstraint("device_id", "metric", "part", "bucket", name="rollups_1m_key"),
    )
    op.create_table(
        "snapshots",
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("time", TZ, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False, server_default="image/jpeg"),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ingest_workers",
        sa.Column("worker_id", sa.Text, primary_key=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("heartbeat_at", TZ, nullable=False),
        sa.Column("stats", JSONB, nullable=False, server_default=EMPTY_JSON),
    )
    # Minutes whose rollup must be recomputed, marked by each writer in its own transaction.
    op.create_table(
        "rollup_dirty",
        sa.Column("bucket", TZ, nullable=False),
        sa.Column("worker_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("bucket", "worker_id", name="rollup_dirty_pkey"),
    )
    # create_hypertable adds a (time DESC) index itself; plain PostgreSQL needs one made here.
    for table, column, chunk in (
        ("measurements", "time", "1 day"),
        ("events", "time", "7 days"),
        ("rollups_1m", "bucket", "30 days"),
    ):
        if timescale.installed(bind):
            timescale.make_hypertable(bind, table, column, chunk)
        else:
            op.create_index(f"{table}_{column}_idx", table, [sa.text(f"{column} DESC")])


def downgrade() -> None:
    """Drop the foundation tables."""
    for table in (
        "rollup_dirty",
        "ingest_workers",
        "snapshots",
        "rollups_1m",
        "latest_values",
        "quarantine",
        "events",
        "measurements",
        "devices",
        "zones",
    ):
        op.drop_table(table)

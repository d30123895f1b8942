"""Alerts: one row per alert (at most one active per rule and device) and the history of every transition.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create alerts and alert_history."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("zone", sa.Text),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="open"),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("value", sa.Float),
        sa.Column("opened_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("acknowledged_at", TZ),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("resolved_at", TZ),
        sa.Column("resolved_by", sa.Text),
        sa.CheckConstraint("severity IN ('warning', 'critical')", name="alerts_severity"),
        sa.CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name="alerts_state"),
    )
    op.create_index(
        "alerts_one_active",
        "alerts",
        ["rule", "device_id"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved'"),
    )
    op.create_index("alerts_active", "alerts", ["state"], postgresql_where=sa.text("state <> 'resolved'"))
    op.create_index("alerts_zone", "alerts", ["zone", "id"])
    op.create_table(
        "alert_history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.BigInteger, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("from_state", sa.Text),
        sa.Column("to_state", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("value", sa.Float),
    )
    op.create_index("alert_history_alert", "alert_history", ["alert_id", "id"])


def downgrade() -> None:
    """Drop alert_history and alerts."""
    op.drop_table("alert_history")
    op.drop_table("alerts")

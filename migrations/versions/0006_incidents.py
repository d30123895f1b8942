"""Incidents: alerts grouped (or a report entered by an operator) into one thing operators act on.

incidents (one row each, with a version for optimistic concurrency and the procedure it follows, copied
at creation), incident_alerts (which alerts belong to which incident; an alert to at most one),
incident_steps (procedure steps ticked), incident_events (the timeline), field_teams and the notifications
sent to them (an outbox with retries and a dead-letter state), and an index on devices' coordinates for the
nearby-devices query's bounding box.

Revision ID: 0006_incidents
Revises: 0005_quarantine_budget
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_incidents"
down_revision = "0005_quarantine_budget"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
OPEN = sa.text("state IN ('new', 'assigned', 'in_progress')")


def upgrade() -> None:
    """Create the incident tables and the devices' coordinate index."""
    op.create_table(
        "field_teams",
        sa.Column("team_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_secret", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("members", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("(webhook_url IS NULL) = (webhook_secret IS NULL)", name="field_teams_webhook_signed"),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="new"),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("zone", sa.Text),
        sa.Column("assignee", sa.Text),
        sa.Column("team", sa.Text, sa.ForeignKey("field_teams.team_id", ondelete="SET NULL")),
        sa.Column("procedure", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("last_alert_at", TZ),
        sa.Column("acknowledged_at", TZ),
        sa.Column("resolved_at", TZ),
        sa.Column("closed_at", TZ),
        sa.CheckConstraint("severity IN ('warning', 'critical')", name="incidents_severity"),
        sa.CheckConstraint("state IN ('new', 'assigned', 'in_progress', 'resolved', 'closed')", name="incidents_state"),
        sa.CheckConstraint("origin IN ('alerts', 'operator')", name="incidents_origin"),
    )
    op.create_index("incidents_open", "incidents", ["type", "id"], postgresql_where=OPEN)
    op.create_index("incidents_created", "incidents", ["created_at"])
    op.create_table(
        "incident_alerts",
        sa.Column("alert_id", sa.BigInteger, sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("joined_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("incident_alerts_incident", "incident_alerts", ["incident_id"])
    op.create_table(
        "incident_steps",
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("done_by", sa.Text, nullable=False),
        sa.Column("done_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("incident_id", "step", name="incident_steps_pkey"),
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.CheckConstraint(
            "kind IN ('created', 'alert', 'state', 'severity', 'assign', 'step', 'note', 'escalation')",
            name="incident_events_kind",
        ),
    )
    op.create_index("incident_events_incident", "incident_events", ["incident_id", "id"])
    op.create_index("devices_lat_lon", "devices", ["lat", "lon"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("team_id", sa.Text, sa.ForeignKey("field_teams.team_id", ondelete="CASCADE"), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", TZ),
        sa.CheckConstraint("channel IN ('webhook', 'email')", name="notifications_channel"),
        sa.CheckConstraint("state IN ('pending', 'sent', 'dead')", name="notifications_state"),
    )
    op.create_index("notifications_due", "notifications", ["next_at"], postgresql_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    """Drop them."""
    op.drop_table("notifications")
    op.drop_index("devices_lat_lon", table_name="devices")
    op.drop_table("incident_events")
    op.drop_table("incident_steps")
    op.drop_table("incident_alerts")
    op.drop_table("incidents")
    op.drop_table("field_teams")

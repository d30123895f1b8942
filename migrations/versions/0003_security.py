"""Security: users, sessions, login throttling, the audit log and the broker's accounts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
NOW = sa.func.now()


def upgrade() -> None:
    """Create users, sessions, login_throttle, audit_log and mqtt_accounts."""
    op.create_table(
        "users",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("must_change", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", TZ, nullable=False, server_default=NOW),
        sa.Column("password_changed_at", TZ, nullable=False, server_default=NOW),
        sa.Column("last_login_at", TZ),
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="users_role"),
    )
    # Only a SHA-256 of the token is stored: a copy of this table does not let anyone in.
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column("user_name", sa.Text, sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=NOW),
        sa.Column("last_seen_at", TZ, nullable=False, server_default=NOW),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("sessions_user", "sessions", ["user_name"])
    # One row per throttled key ("user:<name>" or "addr:<address>"), shared by every server process.
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", TZ, nullable=False),
        sa.Column("locked_until", TZ),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("time", TZ, nullable=False, server_default=NOW),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False, server_default=""),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("audit_log_time", "audit_log", [sa.text("time DESC")])
    op.create_index("audit_log_action", "audit_log", ["action", "id"])
    # Broker accounts: one per provisioned device plus the services'. The hash is Mosquitto's own
    # PBKDF2 line, so the password file is written from this table without ever seeing a secret.
    op.create_table(
        "mqtt_accounts",
        sa.Column("username", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.device_id", ondelete="CASCADE"), unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=NOW),
        sa.Column("rotated_at", TZ, nullable=False, server_default=NOW),
        sa.Column("revoked_at", TZ),
        sa.CheckConstraint("role IN ('device', 'ingest', 'serve', 'simulate')", name="mqtt_accounts_role"),
        sa.CheckConstraint("(role = 'device') = (device_id IS NOT NULL)", name="mqtt_accounts_device"),
    )


def downgrade() -> None:
    """Drop the security tables."""
    for table in ("mqtt_accounts", "audit_log", "login_throttle", "sessions", "users"):
        op.drop_table(table)

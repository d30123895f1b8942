"""People and services that log in: users, sessions, login throttling, the audit log, broker accounts."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ioc.tables.core import TZ, metadata

users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("must_change", Boolean, nullable=False, server_default=text("false")),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("password_changed_at", TZ, nullable=False, server_default=func.now()),
    Column("last_login_at", TZ, nullable=True),
    Column("display", Boolean, nullable=False, server_default=text("false")),  # wall display: long sessions
    CheckConstraint("role IN ('admin', 'supervisor', 'operator', 'viewer')", name="users_role"),
    CheckConstraint("NOT display OR role = 'viewer'", name="users_display_viewer"),
)

# Only a SHA-256 of the token is stored: a copy of this table does not let anyone in.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("user_name", Text, ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("last_seen_at", TZ, nullable=False, server_default=func.now()),
    Column("expires_at", TZ, nullable=False),
    Column("source", Text, nullable=False, server_default=""),
    Column("user_agent", Text, nullable=False, server_default=""),
    Index("sessions_user", "user_name"),
)

# One row per throttled key ("user:<name>" or "addr:<address>"), shared by every server process.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", TZ, nullable=False),
    Column("locked_until", TZ, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("time", TZ, nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False, server_default=""),
    Column("outcome", Text, nullable=False),
    Column("source", Text, nullable=False, server_default=""),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("audit_log_action", "action", "id"),
)
Index("audit_log_time", audit_log.c.time.desc())

# Broker accounts: one per provisioned device plus the services'. The hash is Mosquitto's own PBKDF2 line.
mqtt_accounts = Table(
    "mqtt_accounts",
    metadata,
    Column("username", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("device_id", Text, ForeignKey("devices.device_id", ondelete="CASCADE"), nullable=True, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("rotated_at", TZ, nullable=False, server_default=func.now()),
    Column("revoked_at", TZ, nullable=True),
    CheckConstraint("role IN ('device', 'ingest', 'serve', 'simulate')", name="mqtt_accounts_role"),
    CheckConstraint("(role = 'device') = (device_id IS NOT NULL)", name="mqtt_accounts_device"),
)

"""Alerts raised by the rule engine and the history of each one's states."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Float, ForeignKey, Index, Table, Text, func, text

from ioc.tables.core import TZ, metadata

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("rule", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("zone", Text, nullable=True),
    Column("severity", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="open"),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("value", Float, nullable=True),
    Column("opened_at", TZ, nullable=False, server_default=func.now()),
    Column("updated_at", TZ, nullable=False, server_default=func.now()),
    Column("acknowledged_at", TZ, nullable=True),
    Column("acknowledged_by", Text, nullable=True),
    Column("note", Text, nullable=True),
    Column("resolved_at", TZ, nullable=True),
    Column("resolved_by", Text, nullable=True),
    CheckConstraint("severity IN ('warning', 'critical')", name="alerts_severity"),
    CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name="alerts_state"),
    # At most one alert per rule and device that is not resolved.
    Index("alerts_one_active", "rule", "device_id", unique=True, postgresql_where=text("state <> 'resolved'")),
    Index("alerts_active", "state", postgresql_where=text("state <> 'resolved'")),
    Index("alerts_zone", "zone", "id"),
)

alert_history = Table(
    "alert_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("time", TZ, nullable=False, server_default=func.now()),
    Column("from_state", Text, nullable=True),
    Column("to_state", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("note", Text, nullable=True),
    Column("value", Float, nullable=True),
    Index("alert_history_alert", "alert_id", "id"),
)

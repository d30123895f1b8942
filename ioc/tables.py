"""Table definitions (SQLAlchemy Core): the Alembic target and the one description of the schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
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

# Numeric readings: one row per device, metric, part and time. The unique key makes writes idempotent.
measurements = Table(
    "measurements",
    metadata,
    Column("time", TZ, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("part", Text, nullable=False, server_default=""),
    Column("value", Float, nullable=False),
    Column("seq", BigInteger, nullable=True),
    UniqueConstraint("device_id", "metric", "part", "time", name="measurements_key"),
)

events = Table(
    "events",
    metadata,
    Column("time", TZ, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("attrs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    UniqueConstraint("device_id", "type", "time", name="events_key"),
)

# Refused device messages, a sample of each device's (see ingest.quarantine): the payload holds at most
# IOC_INGEST_QUARANTINE_SAMPLE_BYTES of the payload_bytes received (NULL on rows written before the budget
# existed, whose payload is whole).
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("device_id", Text, nullable=True),
    Column("payload_bytes", Integer, nullable=True),
    Index("quarantine_received", "received_at"),
    Index("quarantine_reason", "reason", "received_at"),
)

# Refused messages past their device's sample budget: counted per device ('' when the topic names none),
# reason and window, never stored.
quarantine_overflow = Table(
    "quarantine_overflow",
    metadata,
    Column("device_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("window_start", TZ, nullable=False),
    Column("messages", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("first_at", TZ, nullable=False),
    Column("last_at", TZ, nullable=False),
    Column("last_topic", Text, nullable=False),
    PrimaryKeyConstraint("device_id", "reason", "window_start", name="quarantine_overflow_pkey"),
    Index("quarantine_overflow_last", "last_at"),
)

latest_values = Table(
    "latest_values",
    metadata,
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("part", Text, nullable=False, server_default=""),
    Column("time", TZ, nullable=False),
    Column("value", Float, nullable=False),
    PrimaryKeyConstraint("device_id", "metric", "part", name="latest_values_pkey"),
)

# 1-minute rollups, recomputed from raw rows by ingest.rollups for the minutes the writer marks dirty (rollup_dirty).
rollups_1m = Table(
    "rollups_1m",
    metadata,
    Column("bucket", TZ, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("part", Text, nullable=False, server_default=""),
    Column("count", Integer, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    UniqueConstraint("device_id", "metric", "part", "bucket", name="rollups_1m_key"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("device_id", Text, primary_key=True),
    Column("time", TZ, nullable=False),
    Column("content_type", Text, nullable=False, server_default="image/jpeg"),
    Column("data", LargeBinary, nullable=False),
)

# One row per ingest worker, refreshed every few seconds: the API's health reads it.
ingest_workers = Table(
    "ingest_workers",
    metadata,
    Column("worker_id", Text, primary_key=True),
    Column("started_at", TZ, nullable=False),
    Column("heartbeat_at", TZ, nullable=False),
    Column("stats", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)

# Minutes whose 1-minute rollup must be recomputed from raw rows (see ingest.rollups).
rollup_dirty = Table(
    "rollup_dirty",
    metadata,
    Column("bucket", TZ, nullable=False),
    Column("worker_id", Text, nullable=False),
    PrimaryKeyConstraint("bucket", "worker_id", name="rollup_dirty_pkey"),
)

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

# Incidents (see incidents/): alerts grouped, or a report entered by an operator, followed through to closed.
# ``version`` grows with every change an operator can collide with (optimistic concurrency); ``procedure`` is the
# procedure (sop/*.yaml) as it was when the incident was created.
INCIDENT_OPEN = text("state IN ('new', 'assigned', 'in_progress')")

# Field teams incidents are handed to, and how they are told: a signed webhook and/or e-mail.
field_teams = Table(
    "field_teams",
    metadata,
    Column("team_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("webhook_secret", Text, nullable=True),  # HMAC-SHA256 key of the webhook's signature
    Column("email", Text, nullable=True),
    Column("members", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    CheckConstraint("(webhook_url IS NULL) = (webhook_secret IS NULL)", name="field_teams_webhook_signed"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("type", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="new"),
    Column("origin", Text, nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("zone", Text, nullable=True),
    Column("assignee", Text, nullable=True),
    Column("team", Text, ForeignKey("field_teams.team_id", ondelete="SET NULL"), nullable=True),
    Column("procedure", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_by", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("updated_at", TZ, nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
    Column("last_alert_at", TZ, nullable=True),
    Column("acknowledged_at", TZ, nullable=True),
    Column("resolved_at", TZ, nullable=True),
    Column("closed_at", TZ, nullable=True),
    CheckConstraint("severity IN ('warning', 'critical')", name="incidents_severity"),
    CheckConstraint("state IN ('new', 'assigned', 'in_progress', 'resolved', 'closed')", name="incidents_state"),
    CheckConstraint("origin IN ('alerts', 'operator')", name="incidents_origin"),
    Index("incidents_open", "type", "id", postgresql_where=INCIDENT_OPEN),
    Index("incidents_created", "created_at"),
)

# An alert belongs to at most one incident; ``severity`` is the alert's as last taken into the incident.
incident_alerts = Table(
    "incident_alerts",
    metadata,
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("incident_id", BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("severity", Text, nullable=False),
    Column("joined_at", TZ, nullable=False, server_default=func.now()),
    Index("incident_alerts_incident", "incident_id"),
)

incident_steps = Table(
    "incident_steps",
    metadata,
    Column("incident_id", BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("step", Text, nullable=False),
    Column("done_by", Text, nullable=False),
    Column("done_at", TZ, nullable=False, server_default=func.now()),
    Column("note", Text, nullable=True),
    PrimaryKeyConstraint("incident_id", "step", name="incident_steps_pkey"),
)

# The timeline: every change to an incident, in order.
incident_events = Table(
    "incident_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("time", TZ, nullable=False, server_default=func.now()),
    Column("kind", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    CheckConstraint(
        "kind IN ('created', 'alert', 'state', 'severity', 'assign', 'step', 'note', 'escalation', 'photo', 'pin', "
        "'field_link')",
        name="incident_events_kind",
    ),
    Index("incident_events_incident", "incident_id", "id"),
)

# A field team member's link to one incident (incidents.field): only the token's SHA-256 is kept.
field_links = Table(
    "field_links",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("token_sha256", Text, nullable=False, unique=True),
    Column("team", Text, ForeignKey("field_teams.team_id", ondelete="SET NULL"), nullable=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("expires_at", TZ, nullable=False),
    Column("revoked_at", TZ, nullable=True),
    Column("revoked_by", Text, nullable=True),
    Column("last_used_at", TZ, nullable=True),
    Index("field_links_incident", "incident_id"),
)

# Pictures kept with an incident: photos from the field and camera snapshots pinned by an operator (a copy).
incident_media = Table(
    "incident_media",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("device_id", Text, nullable=True),
    Column("taken_at", TZ, nullable=True),
    Column("caption", Text, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('photo', 'pin')", name="incident_media_kind"),
    CheckConstraint("content_type IN ('image/jpeg', 'image/png')", name="incident_media_type"),
    Index("incident_media_incident", "incident_id"),
)

# Procedure editions saved in the browser (incidents.editions); the sop/*.yaml files are the seed, and of a
# file's edition and these rows the highest version of a type is in force.
procedure_versions = Table(
    "procedure_versions",
    metadata,
    Column("type", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("procedure", JSONB, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    PrimaryKeyConstraint("type", "version", name="procedure_versions_pkey"),
)

# Outbox of messages to field teams (incidents.notify): retried with backoff, ``dead`` after the last attempt.
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Text, ForeignKey("field_teams.team_id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_at", TZ, nullable=False, server_default=func.now()),
    Column("last_error", Text, nullable=True),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("sent_at", TZ, nullable=True),
    CheckConstraint("channel IN ('webhook', 'email')", name="notifications_channel"),
    CheckConstraint("state IN ('pending', 'sent', 'dead')", name="notifications_state"),
    Index("notifications_due", "next_at", postgresql_where=text("state = 'pending'")),
)

# Trained forecast models, one row per version (forecast.store): the model as compressed JSON (LightGBM's text
# format inside, no pickle) with the evaluation on the day it held out. The newest row of a kind is in use.
forecast_models = Table(
    "forecast_models",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("trained_from", TZ, nullable=False),
    Column("trained_until", TZ, nullable=False),
    Column("library", Text, nullable=False),
    Column("train_seconds", Float, nullable=False),
    Column("evaluation", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("model", LargeBinary, nullable=False),
    CheckConstraint("kind IN ('flood', 'traffic')", name="forecast_models_kind"),
    Index("forecast_models_kind", "kind", "id"),
)

# The newest forecast of every (device, metric, horizon), replaced once a minute by the forecast job.
forecasts = Table(
    "forecasts",
    metadata,
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("horizon_min", Integer, nullable=False),
    Column("origin", TZ, nullable=False),
    Column("value", Float, nullable=False),
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
    Column("method", Text, nullable=False),
    Column("model_id", BigInteger, ForeignKey("forecast_models.id", ondelete="SET NULL"), nullable=True),
    PrimaryKeyConstraint("device_id", "metric", "horizon_min", name="forecasts_pkey"),
    CheckConstraint("method IN ('model', 'persistence')", name="forecasts_method"),
)

# Rolling-origin backtests (`ioc forecast backtest`): the printed table as JSON, per kind, metric, horizon, method.
forecast_backtests = Table(
    "forecast_backtests",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("run_at", TZ, nullable=False, server_default=func.now()),
    Column("days", Integer, nullable=False),
    Column("test_from", TZ, nullable=False),
    Column("test_until", TZ, nullable=False),
    Column("results", JSONB, nullable=False),
    Column("crossings", JSONB, nullable=False),
)

# Open data API keys of businesses (`ioc apikeys`): only the SHA-256 of each key is stored; its quotas.
open_api_keys = Table(
    "open_api_keys",
    metadata,
    Column("id", Text, primary_key=True),  # the key's public prefix: ioc_<id>_<secret>
    Column("name", Text, nullable=False),
    Column("key_sha256", Text, nullable=False, unique=True),
    Column("per_minute", Integer, nullable=False),
    Column("rows_per_day", BigInteger, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("revoked_at", TZ, nullable=True),
)

# Use of each key per UTC day (the server adds its counts every few seconds).
open_api_usage = Table(
    "open_api_usage",
    metadata,
    Column("key_id", Text, ForeignKey("open_api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("rows", BigInteger, nullable=False, server_default="0"),
)

# create_hypertable makes these (time DESC) indexes; 0001 makes the same ones itself on plain PostgreSQL.
Index("measurements_time_idx", measurements.c.time.desc())
Index("events_time_idx", events.c.time.desc())
Index("rollups_1m_bucket_idx", rollups_1m.c.bucket.desc())

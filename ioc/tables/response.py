"""Incident response: incidents, their alerts, steps, timeline, field teams and links, media, procedures, outbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ioc.tables.core import TZ, metadata

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

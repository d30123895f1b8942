"""Field links and incident pictures: a team member's link to one incident, and photos and pinned snapshots.

field_links holds the SHA-256 of each link's token (never the token), when it expires and whether it was
revoked; incident_media holds the pictures kept with an incident (photos posted from the field, camera
snapshots pinned by an operator: a copy, so it outlives the camera's snapshot). The timeline gains the
kinds ``photo``, ``pin`` and ``field_link``.

Revision ID: 0009_field_links
Revises: 0008_open_data_keys
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_field_links"
down_revision = "0008_open_data_keys"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
KINDS_BEFORE = "'created', 'alert', 'state', 'severity', 'assign', 'step', 'note', 'escalation'"
KINDS_AFTER = f"{KINDS_BEFORE}, 'photo', 'pin', 'field_link'"


def _event_kinds(kinds: str) -> None:
    op.drop_constraint("incident_events_kind", "incident_events", type_="check")
    op.create_check_constraint("incident_events_kind", "incident_events", f"kind IN ({kinds})")


def upgrade() -> None:
    """Create field_links and incident_media; allow the new timeline kinds."""
    op.create_table(
        "field_links",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
        sa.Column("team", sa.Text, sa.ForeignKey("field_teams.team_id", ondelete="SET NULL")),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
        sa.Column("revoked_by", sa.Text),
        sa.Column("last_used_at", TZ),
    )
    op.create_index("field_links_incident", "field_links", ["incident_id"])
    op.create_table(
        "incident_media",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("device_id", sa.Text),
        sa.Column("taken_at", TZ),
        sa.Column("caption", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('photo', 'pin')", name="incident_media_kind"),
        sa.CheckConstraint("content_type IN ('image/jpeg', 'image/png')", name="incident_media_type"),
    )
    op.create_index("incident_media_incident", "incident_media", ["incident_id"])
    _event_kinds(KINDS_AFTER)


def downgrade() -> None:
    """Drop them (and the timeline entries of the new kinds)."""
    op.execute("DELETE FROM incident_events WHERE kind IN ('photo', 'pin', 'field_link')")
    _event_kinds(KINDS_BEFORE)
    op.drop_table("incident_media")
    op.drop_table("field_links")

"""Incident administration: the supervisor role, and procedure editions saved from the browser.

Revision ID: 0010_incident_admin
Revises: 0009_field_links
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010_incident_admin"
down_revision = "0009_field_links"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Allow the supervisor role; create procedure_versions."""
    op.drop_constraint("users_role", "users", type_="check")
    op.create_check_constraint("users_role", "users", "role IN ('admin', 'supervisor', 'operator', 'viewer')")
    op.create_table(
        "procedure_versions",
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("procedure", JSONB, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("type", "version", name="procedure_versions_pkey"),
    )


def downgrade() -> None:
    """Drop procedure_versions; supervisors become operators."""
    op.drop_table("procedure_versions")
    op.execute("UPDATE users SET role = 'operator' WHERE role = 'supervisor'")
    op.drop_constraint("users_role", "users", type_="check")
    op.create_check_constraint("users_role", "users", "role IN ('admin', 'operator', 'viewer')")

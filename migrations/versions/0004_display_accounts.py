"""Display accounts: read-only users for the control-room wall, whose sessions last days, not a shift.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """users.display, only for viewers."""
    op.add_column("users", sa.Column("display", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.create_check_constraint("users_display_viewer", "users", "NOT display OR role = 'viewer'")


def downgrade() -> None:
    """Drop the flag."""
    op.drop_constraint("users_display_viewer", "users", type_="check")
    op.drop_column("users", "display")

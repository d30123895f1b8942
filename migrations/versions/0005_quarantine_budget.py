"""Quarantine budget: a sample of each device's refused messages is kept, the rest counted per window.

quarantine.payload_bytes (the size received; the payload column holds at most the sample) and
quarantine_overflow (messages past the budget, per device, reason and window). Independent of the
role migrations: it only adds a column and a table.

Revision ID: 0005_quarantine_budget
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_quarantine_budget"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add quarantine.payload_bytes and the quarantine_overflow table."""
    op.add_column("quarantine", sa.Column("payload_bytes", sa.Integer, nullable=True))
    op.create_table(
        "quarantine_overflow",
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("first_at", TZ, nullable=False),
        sa.Column("last_at", TZ, nullable=False),
        sa.Column("last_topic", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "reason", "window_start", name="quarantine_overflow_pkey"),
    )
    op.create_index("quarantine_overflow_last", "quarantine_overflow", ["last_at"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("quarantine_overflow")
    op.drop_column("quarantine", "payload_bytes")

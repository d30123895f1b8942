"""Open data API keys (stored as SHA-256 digests) with their quotas, and their use per day.

Independent of the other feature migrations: it only adds two tables.

Revision ID: 0008_open_data_keys
Revises: 0007_forecasts
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_open_data_keys"
down_revision = "0007_forecasts"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create open_api_keys and open_api_usage."""
    op.create_table(
        "open_api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("key_sha256", sa.Text, nullable=False, unique=True),
        sa.Column("per_minute", sa.Integer, nullable=False),
        sa.Column("rows_per_day", sa.BigInteger, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
    )
    op.create_table(
        "open_api_usage",
        sa.Column("key_id", sa.Text, sa.ForeignKey("open_api_keys.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("open_api_usage")
    op.drop_table("open_api_keys")

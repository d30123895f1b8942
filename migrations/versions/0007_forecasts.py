"""Forecasts: model versions with their evaluation, the newest forecast per device, metric and horizon, backtests.

Independent of the other feature migrations: it only adds three tables.

Revision ID: 0007_forecasts
Revises: 0005_quarantine_budget
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_forecasts"
down_revision = "0006_incidents"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create forecast_models, forecasts and forecast_backtests."""
    op.create_table(
        "forecast_models",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("trained_from", TZ, nullable=False),
        sa.Column("trained_until", TZ, nullable=False),
        sa.Column("library", sa.Text, nullable=False),
        sa.Column("train_seconds", sa.Float, nullable=False),
        sa.Column("evaluation", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("model", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("kind IN ('flood', 'traffic')", name="forecast_models_kind"),
    )
    op.create_index("forecast_models_kind", "forecast_models", ["kind", "id"])
    op.create_table(
        "forecasts",
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("horizon_min", sa.Integer, nullable=False),
        sa.Column("origin", TZ, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("lower", sa.Float, nullable=True),
        sa.Column("upper", sa.Float, nullable=True),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("model_id", sa.BigInteger, sa.ForeignKey("forecast_models.id", ondelete="SET NULL"), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "metric", "horizon_min", name="forecasts_pkey"),
        sa.CheckConstraint("method IN ('model', 'persistence')", name="forecasts_method"),
    )
    op.create_table(
        "forecast_backtests",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("run_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("test_from", TZ, nullable=False),
        sa.Column("test_until", TZ, nullable=False),
        sa.Column("results", JSONB, nullable=False),
        sa.Column("crossings", JSONB, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("forecast_backtests")
    op.drop_table("forecasts")
    op.drop_table("forecast_models")

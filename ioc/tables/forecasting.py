"""Trained forecast models, the newest forecasts and the backtests."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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

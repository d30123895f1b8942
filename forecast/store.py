"""Forecast rows in the database: model versions, the newest forecasts, backtest results."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import asyncpg

from forecast.models import Forecast
from ioc.db import FORECASTS_CHANNEL

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 14  # model versions kept per kind (two weeks of daily retraining)


async def save_model(
    conn: asyncpg.Connection,
    kind: str,
    blob: bytes,
    trained_from: datetime,
    trained_until: datetime,
    library: str,
    seconds: float,
    evaluation: dict[str, Any],
) -> int:
    """Store a new version of ``kind``'s model (it becomes the one in use); older versions beyond KEEP_VERSIONS go."""
    async with conn.transaction():
        model_id: int = await conn.fetchval(
            "INSERT INTO forecast_models (kind, trained_from, trained_until, library, train_seconds, evaluation, "
            "model) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING id",
            kind,
            trained_from,
            trained_until,
            library,
            seconds,
            evaluation,
            blob,
        )
        await conn.execute(
            "DELETE FROM forecast_models WHERE kind = $1 AND id NOT IN "
            "(SELECT id FROM forecast_models WHERE kind = $1 ORDER BY id DESC LIMIT $2)",
            kind,
            KEEP_VERSIONS,
        )
    logger.info("stored %s model version %d (%.1f s to train)", kind, model_id, seconds)
    return model_id


async def newest_model(conn: asyncpg.Connection, kind: str) -> tuple[int, datetime, bytes] | None:
    """(id, created_at, blob) of the model of ``kind`` in use, None when none was trained."""
    row = await conn.fetchrow(
        "SELECT id, created_at, model FROM forecast_models WHERE kind = $1 ORDER BY id DESC LIMIT 1", kind
    )
    return None if row is None else (row["id"], row["created_at"], row["model"])


async def model_versions(conn: asyncpg.Connection) -> dict[str, int]:
    """Id of the model in use per kind."""
    rows = await conn.fetch("SELECT kind, max(id) AS id FROM forecast_models GROUP BY kind")
    return {r["kind"]: r["id"] for r in rows}


async def write_forecasts(
    conn: asyncpg.Connection, origin: datetime, forecasts: list[Forecast], model_ids: dict[str, int | None]
) -> int:
    """Replace the newest forecasts by ``forecasts`` made at ``origin``; rows of devices not forecast go.

    The same transaction NOTIFYs ``ioc_forecasts`` (the live servers push the zones' forecast channels).
    """
    kind_of = {"water_level_cm": "flood", "avg_speed_kmh": "traffic", "vehicle_count": "traffic"}
    rows = [
        (
            f.device_id,
            f.metric,
            f.horizon_min,
            origin,
            f.value,
            f.lower,
            f.upper,
            f.method,
            model_ids.get(kind_of.get(f.metric, "")) if f.method == "model" else None,
        )
        for f in forecasts
    ]
    async with conn.transaction():
        await conn.execute("DELETE FROM forecasts")
        await conn.copy_records_to_table(
            "forecasts",
            records=rows,
            columns=["device_id", "metric", "horizon_min", "origin", "value", "lower", "upper", "method", "model_id"],
        )
        await conn.execute("SELECT pg_notify($1, $2)", FORECASTS_CHANNEL, origin.isoformat())
    return len(rows)


async def save_backtest(
    conn: asyncpg.Connection,
    days: int,
    test_from: datetime,
    test_until: datetime,
    results: list[dict[str, Any]],
    crossings: list[dict[str, Any]],
) -> int:
    """Store a backtest's table; returns its id."""
    backtest_id: int = await conn.fetchval(
        "INSERT INTO forecast_backtests (days, test_from, test_until, results, crossings) "
        "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) RETURNING id",
        days,
        test_from,
        test_until,
        results,
        crossings,
    )
    return backtest_id

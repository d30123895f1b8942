"""Training from the database: read the stored history, refit the tide from a gauge, train, store a version.

`rollups_1m (+ a tide gauge's measurements) -> Grid -> models.train_* -> forecast_models`
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata

import asyncpg

from forecast import models, store, stored
from forecast.data import FLOOD_METRICS, TRAFFIC_METRICS, Grid, floor_minute, load_devices, load_grid, load_levels
from forecast.tide import TideModel, fit

logger = logging.getLogger(__name__)

MIN_GAUGE_DAYS = 2.0


@dataclass(frozen=True)
class Trained:
    """What one training stored: model ids per kind (None: too little history) and CPU seconds."""

    model_ids: dict[str, int | None]
    cpu_seconds: float
    wall_seconds: float
    minutes: int


def library() -> str:
    """The versions a stored model depends on."""
    return f"lightgbm {metadata.version('lightgbm')}, numpy {metadata.version('numpy')}"


async def history(conn: asyncpg.Connection, until: datetime, days: int) -> Grid:
    """The flood and traffic minute series of the ``days`` before ``until`` (exclusive)."""
    return await load_grid(conn, until - timedelta(days=days), until, FLOOD_METRICS + TRAFFIC_METRICS)


async def refit_tide(conn: asyncpg.Connection, tide: TideModel, until: datetime, days: int) -> TideModel:
    """``tide`` refitted from its gauge's stored levels before ``until`` (unchanged without a long enough record)."""
    if tide.gauge is None:
        return tide
    t, level = await load_levels(conn, tide.gauge.device_id, tide.gauge.metric, until - timedelta(days=days), until)
    if len(t) < 2 or (t.max() - t.min()) / 86400 < MIN_GAUGE_DAYS:
        logger.info("tide gauge %s: %d levels, too short a record to refit", tide.gauge.device_id, len(t))
        return tide
    return fit(t, level, tide)


async def train_all(
    conn: asyncpg.Connection, tide: TideModel, days: int, threads: int = 2, until: datetime | None = None
) -> Trained:
    """Train the flood and traffic models on the last ``days`` days and store them as new versions."""
    until = floor_minute(until or datetime.now(UTC))
    wall, cpu = time.perf_counter(), time.process_time()
    devices = await load_devices(conn)
    grid = await history(conn, until, days)
    tide = await refit_tide(conn, tide, until, days)
    ids: dict[str, int | None] = {"flood": None, "traffic": None}
    flood = models.train_flood(grid, devices, tide, threads)
    traffic = models.train_traffic(grid, devices, threads)
    spent = time.process_time() - cpu
    start = grid.start
    if flood is not None:
        flood.tide = tide.to_dict() if tide.fitted else None
        evaluation = {**flood.evaluation, "tide_fitted": list(tide.fitted)}
        ids["flood"] = await store.save_model(
            conn, "flood", stored.dump_flood(flood), start, until, library(), spent, evaluation
        )
    if traffic is not None:
        ids["traffic"] = await store.save_model(
            conn, "traffic", stored.dump_traffic(traffic), start, until, library(), spent, traffic.evaluation
        )
    if flood is None and traffic is None:
        logger.warning(
            "forecast training: less than %d days of history, persistence only", models.MIN_TRAIN_MIN // 1440
        )
    return Trained(ids, spent, time.perf_counter() - wall, grid.minutes)

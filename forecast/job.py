"""The forecast job of ``ioc serve``: one leader across servers forecasts every minute and retrains daily.

Leadership is a PostgreSQL advisory lock (``ioc.leader``, as the alert engine's). Forecast
rounds run in this process (the CPU part in a thread); training runs in a child process (``ioc forecast
train``) so its memory and CPU never sit in the server. numpy and lightgbm are imported by the first
round, not when the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

import asyncpg

from ioc.leader import DB_ERRORS, LeaderJob
from ioc.processes import run_ioc_command
from ioc.settings import Settings

if TYPE_CHECKING:
    from forecast.inference import Forecaster

logger = logging.getLogger(__name__)

LOCK_KEY = 0x10C_F0CA  # pg advisory lock id of the forecast leader
LEADER_RETRY_S = 5.0
TRAIN_TIMEOUT_S = 1800.0
RETRY_TRAIN_S = 3600.0  # after a training that stored nothing (too little history) or failed


class ForecastJob:
    """An async context manager: competes for leadership and, while leader, runs rounds and retraining."""

    def __init__(self, pool: asyncpg.Pool, database_url: str, settings: Settings) -> None:
        self.pool = pool
        self.database_url = database_url
        self.settings = settings
        self.last_round: dict[str, Any] = {}
        self.job = LeaderJob(
            "forecast job",
            database_url,
            LOCK_KEY,
            self.round,
            interval=lambda: settings.forecast_every_s,
            retry_s=LEADER_RETRY_S,
            min_gap_s=1.0,
            errors=(*DB_ERRORS, ValueError),
            on_lead=self._on_lead,
        )
        self._forecaster: Forecaster | None = None
        self._training: asyncio.Task[None] | None = None
        self._tried_at: float | None = None
        self._stale_tried: int | None = None  # the unreadable model version a training was started for

    @property
    def leader(self) -> bool:
        """True while this process runs the forecasts."""
        return self.job.leader

    async def __aenter__(self) -> ForecastJob:
        await self.job.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.job.__aexit__(kind, exc, tb)
        if self._training is not None:
            self._training.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._training

    def _on_lead(self, leader: bool) -> None:
        if leader:
            self._forecaster = None  # made afresh by the first round of each lead

    async def round(self) -> None:
        """Retrain when due (in a child), then forecast every series once."""
        if self._forecaster is None:
            from forecast.inference import Forecaster
            from forecast.tide import load_tide

            self._forecaster = Forecaster(load_tide(self.settings.forecast_tide_file))
        async with self.pool.acquire() as conn:
            await self._maybe_train(conn, stale=self._forecaster.unusable)  # as the previous round found it
            rows, seconds = await self._forecaster.round(conn)
        self.last_round = {"at": datetime.now(UTC).isoformat(), "rows": rows, "seconds": round(seconds, 3)}
        logger.debug("forecast round: %d rows in %.3f s", rows, seconds)

    async def _maybe_train(self, conn: asyncpg.Connection, stale: int | None = None) -> None:
        """Start a training child when the newest model is older than IOC_FORECAST_RETRAIN_HOURS, when there is
        none, or when the newest is ``stale`` (stored by a version of ioc with other features)."""
        if self._training is not None and not self._training.done():
            return
        if stale is not None and stale != self._stale_tried:
            self._stale_tried = stale
            self._tried_at = time.monotonic()
            self._training = asyncio.create_task(self.train(), name="forecast-training")
            return
        newest = await conn.fetchval("SELECT max(created_at) FROM forecast_models")
        due = timedelta(hours=self.settings.forecast_retrain_hours)
        recently = self._tried_at is not None and time.monotonic() - self._tried_at < min(
            RETRY_TRAIN_S, due.total_seconds()
        )
        if (newest is None or datetime.now(UTC) - newest >= due) and not recently:
            self._tried_at = time.monotonic()
            self._training = asyncio.create_task(self.train(), name="forecast-training")

    async def train(self) -> None:
        """``ioc forecast train`` in a child process with this server's database role."""
        env = {**os.environ, "IOC_DATABASE_URL": self.database_url}
        await run_ioc_command("forecast training", ["forecast", "train"], env, TRAIN_TIMEOUT_S)

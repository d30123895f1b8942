"""One forecast round: the newest models, the few windows of history their features read, every device.

`forecast_models + rollups_1m (windows before the origin) -> models.predict_all -> forecasts`
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from forecast import models, store, stored
from forecast.data import FLOOD_METRICS, TRAFFIC_METRICS, Device, Grid, floor_minute, load_devices, load_grid
from forecast.features import M2_MIN, WEEK_MIN
from forecast.tide import TideModel, from_dict

logger = logging.getLogger(__name__)

MARGIN_MIN = 15  # before each window: gaps the features bridge (ffill) need their left edge


def windows(origin: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches before ``origin`` the features read: the last 3 hours, one tide, a day and a week back."""
    horizon = max(models.FLOOD_HORIZONS) + 1
    out = [(origin - timedelta(minutes=181 + MARGIN_MIN), origin)]
    for back in (M2_MIN, 1440, WEEK_MIN):
        out.append((origin - timedelta(minutes=back + MARGIN_MIN + 1), origin - timedelta(minutes=back - horizon)))
    return out


async def recent(conn: asyncpg.Connection, origin: datetime) -> Grid:
    """A grid ending at ``origin`` holding only the windows the features read (NaN elsewhere)."""
    start = origin - timedelta(minutes=WEEK_MIN + MARGIN_MIN + 1)
    return await load_grid(conn, start, origin, FLOOD_METRICS + TRAFFIC_METRICS, windows(origin))


@dataclass
class Forecaster:
    """Keeps the models in use in memory (reloaded when a new version is stored) and runs rounds."""

    tide: TideModel
    flood: tuple[int, models.FloodModel] | None = None
    traffic: tuple[int, models.TrafficModel] | None = None
    devices: list[Device] = field(default_factory=list)
    unusable: int | None = None  # a newest stored version this code cannot read (other features): retrain now

    async def refresh(self, conn: asyncpg.Connection) -> None:
        """Load a model version newer than the one in memory, and the device registry."""
        versions = await store.model_versions(conn)
        for kind in ("flood", "traffic"):
            held = getattr(self, kind)
            wanted = versions.get(kind)
            if wanted is None or (held is not None and held[0] == wanted):
                continue
            found = await store.newest_model(conn, kind)
            if found is None:
                continue
            try:
                setattr(self, kind, (found[0], stored.load_model(found[2])))
                logger.info("forecast: using %s model version %d", kind, found[0])
            except ValueError as exc:
                self.unusable = found[0]
                logger.warning(
                    "forecast: %s model version %d unusable (%s): persistence until retrained", kind, found[0], exc
                )
        self.devices = await load_devices(conn)

    def tide_in_use(self) -> TideModel:
        """The tide the flood model was trained with when it was refitted, else the file's."""
        if self.flood is not None and self.flood[1].tide:
            return from_dict(self.flood[1].tide, "stored flood model")
        return self.tide

    async def round(self, conn: asyncpg.Connection, now: datetime | None = None) -> tuple[int, float]:
        """Forecast every device at ``now`` (floored to the minute) and store them; (rows, seconds)."""
        started = time.perf_counter()
        origin = floor_minute(now or datetime.now(UTC))
        await self.refresh(conn)
        grid = await recent(conn, origin)
        flood = self.flood[1] if self.flood else None
        traffic = self.traffic[1] if self.traffic else None
        # The arithmetic in a thread: the server's event loop keeps serving the wall meanwhile.
        forecasts = await asyncio.to_thread(models.predict_all, grid, self.devices, self.tide_in_use(), flood, traffic)
        ids = {"flood": self.flood[0] if self.flood else None, "traffic": self.traffic[0] if self.traffic else None}
        rows = await store.write_forecasts(conn, origin, forecasts, ids)
        return rows, time.perf_counter() - started

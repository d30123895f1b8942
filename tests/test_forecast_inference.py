"""The forecaster meets a stored model it cannot read (trained by a version of ioc with other features): it
forecasts by persistence and says which version, so the job retrains at once instead of after a day."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import asyncpg

from forecast.inference import Forecaster
from forecast.models import FORMAT
from forecast.store import save_model
from forecast.tide import load_tide
from ioc.settings import Settings


async def test_an_unreadable_model_is_named_for_retraining(pool: asyncpg.Pool, settings: Settings) -> None:
    doc = {"format": FORMAT, "kind": "flood", "features": ["level"], "boosters": {}, "bands": {},
           "trained_until": datetime.now(UTC).isoformat(), "tide": None}  # fmt: skip
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        model_id = await save_model(conn, "flood", zlib.compress(json.dumps(doc).encode()), now, now, "test", 0.1, {})
        try:
            forecaster = Forecaster(load_tide(settings.forecast_tide_file))
            await forecaster.refresh(conn)
            assert forecaster.flood is None and forecaster.unusable == model_id
        finally:
            await conn.execute("DELETE FROM forecast_models WHERE id = $1", model_id)

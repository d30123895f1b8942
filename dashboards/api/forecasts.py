"""``/api/v1/forecasts``: the newest forecasts (forecast job), the predicted tide and the last backtest's skill."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from dashboards.api.deps import ConnDep, SettingsDep
from dashboards.api.errors import ApiError

router = APIRouter(tags=["forecasts"])

Metric = Literal["water_level_cm", "avg_speed_kmh", "vehicle_count"]
HORIZONS = (15, 30, 60, 120)


@router.get("/forecasts")
async def list_forecasts(
    conn: ConnDep,
    device: Annotated[str | None, Query(max_length=200, description="one device id")] = None,
    metric: Metric | None = None,
    horizon: Annotated[int | None, Query(description="minutes ahead: 15, 30, 60 or 120")] = None,
) -> dict[str, Any]:
    """The newest forecast per device, metric and horizon: value, 80 % interval (lower, upper), method, model."""
    if horizon is not None and horizon not in HORIZONS:
        raise ApiError(422, "invalid_horizon", f"horizon must be one of {', '.join(map(str, HORIZONS))} minutes")
    rows = await conn.fetch(
        "SELECT f.device_id, d.kind, d.zone, f.metric, f.horizon_min, f.origin, "
        "f.origin + make_interval(mins => f.horizon_min) AS target, f.value, f.lower, f.upper, f.method, f.model_id "
        "FROM forecasts f JOIN devices d USING (device_id) "
        "WHERE ($1::text IS NULL OR f.device_id = $1) AND ($2::text IS NULL OR f.metric = $2) "
        "AND ($3::int IS NULL OR f.horizon_min = $3) ORDER BY f.device_id, f.metric, f.horizon_min",
        device,
        metric,
        horizon,
    )
    items = [{**dict(r), "origin": r["origin"].isoformat(), "target": r["target"].isoformat()} for r in rows]
    return {"items": items, "total": len(items), "interval": 0.8}


@router.get("/forecasts/tide")
async def tide(settings: SettingsDep, hours: Annotated[float, Query(gt=0, le=168)] = 24.0) -> dict[str, Any]:
    """The predicted reference tide from now: a point every 10 minutes, and the high and low waters (m)."""
    import numpy as np  # numpy and the tide only when asked: the server starts without them

    from forecast.tide import load_tide

    model = load_tide(settings.forecast_tide_file)
    now = time.time() // 600 * 600
    end = now + hours * 3600
    steps = [now + 600 * i for i in range(int(hours * 6) + 1)]
    levels = model.level_m(np.asarray(steps))
    at = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
    return {
        "station": model.station,
        "points": [{"time": at(t), "level_m": round(float(v), 3)} for t, v in zip(steps, levels, strict=True)],
        "extremes": [{"time": at(t), "level_m": round(v, 3), "type": k} for t, v, k in model.extremes(now, end)],
    }


def relative_skill(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model's MAE relative to persistence per kind, metric and horizon (-0.34: 34 % below persistence)."""
    base = {(r["kind"], r["metric"], r["horizon_min"]): r.get("mae") for r in results if r["method"] == "persistence"}
    out = []
    for r in results:
        ref = base.get((r["kind"], r["metric"], r["horizon_min"]))
        if r["method"] == "model" and r.get("mae") is not None and ref:
            out.append(
                {**{k: r[k] for k in ("kind", "metric", "horizon_min")}, "vs_persistence": round(r["mae"] / ref - 1, 3)}
            )
    return out


@router.get("/forecasts/skill")
async def skill(conn: ConnDep) -> dict[str, Any]:
    """The newest backtest (``ioc forecast backtest``): MAE, RMSE, coverage per kind, metric, horizon, method, and
    ``skill``: the model's MAE relative to persistence (what the wall shows)."""
    row = await conn.fetchrow(
        "SELECT id, run_at, days, test_from, test_until, results, crossings "
        "FROM forecast_backtests ORDER BY id DESC LIMIT 1"
    )
    if row is None:
        return {"backtest": None}
    since = datetime.now(UTC) - row["run_at"]
    return {
        "backtest": {
            **{k: row[k] for k in ("id", "days", "results", "crossings")},
            "skill": relative_skill(row["results"]),
            **{k: row[k].isoformat() for k in ("run_at", "test_from", "test_until")},
            "age_days": round(since / timedelta(days=1), 2),
        }
    }

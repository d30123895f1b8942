"""The learned models and their baselines: LightGBM on lags, persistence, historical average, seasonal naive.

Flood: per horizon, one LightGBM regression of the change of level, pooled over every sensor; the 80 %
interval is the 10-90 % range of its errors on a held-out last day, taken separately per band of
predicted level and for dry and wet origins (split conformal, "Mondrian" by cell: the errors of a street
under 25 cm of water are not those of a dry one, nor those of a dry street with a storm 5 km away).
Quantile objectives gave similar intervals at five times the training time.
Traffic: per metric and horizon one LightGBM (absolute error) of the departure from the value a week
before the target (the historical average for that weekday and 15 minutes where there is none); its
interval is the held-out residuals' 10-90 %.

lightgbm is imported inside the functions that need it: ``ioc serve`` imports this package only when
the forecast job starts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from forecast.data import FLOOD_METRICS, TRAFFIC_METRICS, Device, Grid
from forecast.features import (
    FLOOD_FEATURES,
    TRAFFIC_FEATURES,
    TRAFFIC_FLOOD_KM,
    TRAITS,
    FloodSeries,
    TrafficSeries,
    distance_km,
    history_average,
    network_rain,
    profile,
    rain_rings,
    street_traits,
)
from forecast.tide import TideModel

logger = logging.getLogger(__name__)

FLOOD_HORIZONS = (15, 30, 60, 120)
TRAFFIC_HORIZONS = (15, 30, 60)
CALIBRATION_MIN = 1440  # the last day before the cut-off is held out: interval calibration and evaluation
MIN_TRAIN_MIN = 2 * 1440  # less history than this: no model, persistence only
WARMUP_MIN = 120
QUIET_STRIDE = 10  # dry flood origins are sampled one in ten (weighted ten)
TRAFFIC_STRIDE = 5
FORMAT = 2

BANDS_CM = (1.0, 5.0, 15.0, 25.0, 35.0)  # predicted level bands of the flood interval (cm)
CELLS = 2 * (len(BANDS_CM) + 1)  # the interval's cells: each band, dry origins and wet ones apart
PARAMS = {
    "objective": "l2",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "max_bin": 63,
    "feature_fraction": 0.9,
    "verbose": -1,
    "seed": 7,
    "deterministic": True,
}
ROUNDS = 120


@dataclass(frozen=True)
class Forecast:
    """One forecast value: ``lower``/``upper`` bound the 80 % interval (None when the method has none)."""

    device_id: str
    metric: str
    horizon_min: int
    value: float
    lower: float | None
    upper: float | None
    method: str  # model | persistence


def load_lightgbm() -> Any:
    """lightgbm, imported on first use (the server starts without it)."""
    import lightgbm

    return lightgbm


def _wet(x: np.ndarray) -> np.ndarray:
    """Flood origins where something is happening: water, rain at the sensor or within 8 km."""
    names = FLOOD_FEATURES
    level, rain180 = x[:, names.index("level")], x[:, names.index("rain180")]
    ring0, ring1 = x[:, names.index("ring0_mean15")], x[:, names.index("ring1_mean15")]
    return (
        (np.nan_to_num(level) >= 1.0)
        | (np.nan_to_num(rain180) > 0)
        | (np.nan_to_num(ring0) > 0)
        | (np.nan_to_num(ring1) > 0)
    )


def flood_series(grid: Grid, devices: list[Device], tide: TideModel) -> dict[str, FloodSeries]:
    """Derived series of every flood sensor of ``devices``."""
    floods = [d for d in devices if d.kind == "flood"]
    network = network_rain(grid, floods)
    return {d.device_id: FloodSeries(grid, d, rain_rings(d, floods), tide, network) for d in floods}


def traffic_series(
    grid: Grid, devices: list[Device], tables: dict[str, dict[str, np.ndarray]]
) -> dict[tuple[str, str], TrafficSeries]:
    """Derived series of every traffic detector with history tables, per metric."""
    floods = [d for d in devices if d.kind == "flood"]
    out = {}
    for d in devices:
        if d.kind != "traffic" or d.device_id not in tables:
            continue
        near = [f.device_id for f in floods if distance_km(d, f) <= TRAFFIC_FLOOD_KM]
        for metric, other in (TRAFFIC_METRICS, TRAFFIC_METRICS[::-1]):
            out[(d.device_id, metric)] = TrafficSeries(grid, d, metric, other, tables[d.device_id], near)
    return out


def _gauge_rain(s: FloodSeries) -> np.ndarray:
    """The rain a sensor's street gets: its own gauge, else the mean of the gauges within 3 km."""
    return np.where(np.isfinite(s.rain), s.rain, s.rings[0][0])


def persistence(y: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The newest value at each origin (gaps of up to 10 minutes bridged)."""
    from forecast.features import at, ffill

    return at(ffill(y), last)


def _bands(mid: np.ndarray) -> np.ndarray:
    """Band index of each predicted flood level (0 below BANDS_CM[0] ... len(BANDS_CM) above the last)."""
    return np.searchsorted(np.asarray(BANDS_CM), mid, side="right")


def _cells(mid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Interval cell of each flood row: its predicted-level band, counted again for wet origins (``_wet``)."""
    return _bands(mid) + (len(BANDS_CM) + 1) * _wet(x)


def _quantiles(resid: np.ndarray, fallback: tuple[float, float]) -> tuple[float, float]:
    """10 % and 90 % of held-out errors (``fallback`` when there are too few to tell)."""
    if len(resid) < 30:
        return fallback
    return float(np.quantile(resid, 0.1)), float(np.quantile(resid, 0.9))


@dataclass
class FloodModel:
    """Per horizon: a booster of the change of level and the held-out error quantiles per predicted band."""

    boosters: dict[int, Any]
    bands: dict[int, list[tuple[float, float]]]
    trained_until: datetime
    evaluation: dict[str, Any] = field(default_factory=dict)
    tide: dict[str, Any] | None = None  # the tide it was trained with, when refitted from a gauge
    traits: dict[str, list[float]] = field(default_factory=dict)  # per sensor: features.street_traits

    def attach(self, series: dict[str, FloodSeries]) -> None:
        """Give each sensor's series the street traits fitted in training (NaN for a sensor it never saw)."""
        for device_id, s in series.items():
            s.traits = np.asarray(self.traits.get(device_id, [np.nan] * len(TRAITS)), dtype=float)

    def median(self, x: np.ndarray, h: int) -> np.ndarray:
        """Predicted level (cm) for feature rows at horizon ``h``."""
        level = x[:, FLOOD_FEATURES.index("level")]
        return np.maximum(level + self.boosters[h].predict(x, num_threads=1), 0.0)

    def predict_rows(self, x: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, value, upper) levels for feature rows at horizon ``h``."""
        mid = self.median(x, h)
        q = np.asarray(self.bands[h])
        cell = _cells(mid, x)
        return np.maximum(mid + q[cell, 0], 0.0), mid, np.maximum(mid + q[cell, 1], 0.0)


def _origins(first: int, end: int, stride: int = 1) -> np.ndarray:
    return np.arange(max(first, WARMUP_MIN), end, stride)


def _flood_samples(
    series: dict[str, FloodSeries], h: int, first: int, end: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, target change, weight) for origins ``last`` in [first, end - h) (targets before ``end``)."""
    xs, ys, ws = [], [], []
    for s in series.values():
        last = _origins(first, end - h)
        x = s.matrix(last, h)
        y = s.level[last + h] - x[:, 0]
        wet = _wet(x)
        keep = np.isfinite(y) & np.isfinite(x[:, 0]) & (wet | (last % QUIET_STRIDE == 0))
        xs.append(x[keep].astype(np.float32))  # LightGBM bins them: float32 halves the samples' memory
        ys.append(y[keep])
        ws.append(np.where(wet[keep], 1.0, float(QUIET_STRIDE)))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws)


def train_flood(grid: Grid, devices: list[Device], tide: TideModel, threads: int = 2) -> FloodModel | None:
    """Train on every minute of ``grid`` (its last day held out for calibration); None if history is short."""
    lgb = load_lightgbm()
    series = flood_series(grid, devices, tide)
    split = grid.minutes - CALIBRATION_MIN
    if not series or split < MIN_TRAIN_MIN - CALIBRATION_MIN:
        return None
    model = FloodModel({}, {}, grid.time(grid.minutes))
    model.traits = {
        device_id: [float(v) for v in street_traits(s.level[:split], _gauge_rain(s)[:split])]
        for device_id, s in series.items()
    }
    model.attach(series)
    evaluation: dict[str, Any] = {}
    for h in FLOOD_HORIZONS:
        x, y, w = _flood_samples(series, h, 0, split)
        data = lgb.Dataset(x, y, weight=w, feature_name=list(FLOOD_FEATURES), free_raw_data=True)
        model.boosters[h] = lgb.train({**PARAMS, "num_threads": threads}, data, num_boost_round=ROUNDS)
        # Held-out day: every origin (no sampling), targets inside the grid.
        held = _origins(split, grid.minutes - h)
        cx = np.vstack([s.matrix(held, h) for s in series.values()])
        cy = np.concatenate([s.level[held + h] for s in series.values()])
        ok = np.isfinite(cy) & np.isfinite(cx[:, 0])
        cx, cy = cx[ok], cy[ok]
        mid = model.median(cx, h)
        resid, band, wet = cy - mid, _bands(mid), _wet(cx)
        overall = _quantiles(resid, (0.0, 0.0))
        # A cell with too few held-out errors takes its band's (dry or wet together), then everything's.
        by_band = [_quantiles(resid[band == b], overall) for b in range(len(BANDS_CM) + 1)]
        model.bands[h] = [
            _quantiles(resid[(band == b) & (wet == w)], by_band[b]) for w in (False, True) for b in range(len(by_band))
        ]
        lo, mid, hi = model.predict_rows(cx, h)
        evaluation[str(h)] = {
            "rows": int(len(x)),
            "holdout": int(len(cy)),
            "mae": float(np.mean(np.abs(mid - cy))) if len(cy) else None,
            "mae_persistence": float(np.mean(np.abs(cx[:, 0] - cy))) if len(cy) else None,
            "coverage": float(np.mean((lo <= cy) & (cy <= hi))) if len(cy) else None,
        }
    model.evaluation = {"flood": evaluation}
    return model


@dataclass
class TrafficModel:
    """Per (metric, horizon): a booster of the departure from history and its residual 10/90 % quantiles."""

    boosters: dict[tuple[str, int], Any]
    bands: dict[tuple[str, int], tuple[float, float]]
    tables: dict[str, dict[str, np.ndarray]]  # device -> metric -> (7, 96) history average
    trained_until: datetime
    evaluation: dict[str, Any] = field(default_factory=dict)

    def predict_rows(self, x: np.ndarray, metric: str, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, value, upper) for feature rows."""
        mid = np.maximum(traffic_base(x) + self.boosters[(metric, h)].predict(x, num_threads=1), 0.0)
        q10, q90 = self.bands[(metric, h)]
        return np.maximum(mid + q10, 0.0), mid, mid + q90


def traffic_base(x: np.ndarray) -> np.ndarray:
    """What the traffic model corrects: the detector's usual value at the target's minute (``profile``)."""
    return x[:, TRAFFIC_FEATURES.index("profile_target")]


def history_tables(grid: Grid, devices: list[Device], end: int) -> dict[str, dict[str, np.ndarray]]:
    """Historical-average tables of every traffic detector from minutes before ``end``."""
    epoch = grid.epoch()[:end]
    tables: dict[str, dict[str, np.ndarray]] = {}
    for d in devices:
        if d.kind != "traffic":
            continue
        values = {m: grid.get(d.device_id, m)[:end] for m in TRAFFIC_METRICS}
        if all(np.isfinite(v).any() for v in values.values()):
            tables[d.device_id] = {m: history_average(v, epoch) for m, v in values.items()}
            tables[d.device_id].update({f"profile:{m}": profile(v, epoch) for m, v in values.items()})
    return tables


def train_traffic(grid: Grid, devices: list[Device], threads: int = 2) -> TrafficModel | None:
    """Train on ``grid`` (its last day held out); None if history is short."""
    lgb = load_lightgbm()
    split = grid.minutes - CALIBRATION_MIN
    if split < MIN_TRAIN_MIN - CALIBRATION_MIN:
        return None
    tables = history_tables(grid, devices, split)
    series = traffic_series(grid, devices, tables)
    if not series:
        return None
    boosters: dict[tuple[str, int], Any] = {}
    bands: dict[tuple[str, int], tuple[float, float]] = {}
    evaluation: dict[str, Any] = {}
    for metric in TRAFFIC_METRICS:
        chosen = {k: s for k, s in series.items() if k[1] == metric}
        for h in TRAFFIC_HORIZONS:
            last = _origins(0, split - h, TRAFFIC_STRIDE)
            x = np.vstack([s.matrix(last, h).astype(np.float32) for s in chosen.values()])
            y = np.concatenate([s.value[last + h] for s in chosen.values()])
            base = traffic_base(x)
            ok = np.isfinite(y) & np.isfinite(base)
            data = lgb.Dataset(x[ok], (y - base)[ok], feature_name=list(TRAFFIC_FEATURES), free_raw_data=True)
            params = {**PARAMS, "objective": "l1", "num_threads": threads}
            boosters[(metric, h)] = lgb.train(params, data, num_boost_round=ROUNDS)
            held = _origins(split, grid.minutes - h)
            cx = np.vstack([s.matrix(held, h) for s in chosen.values()])
            cy = np.concatenate([s.value[held + h] for s in chosen.values()])
            model = TrafficModel({(metric, h): boosters[(metric, h)]}, {(metric, h): (0.0, 0.0)}, tables, grid.time(0))
            _, mid, _ = model.predict_rows(cx, metric, h)
            ok = np.isfinite(cy) & np.isfinite(mid)
            resid = cy[ok] - mid[ok]
            bands[(metric, h)] = (
                (float(np.quantile(resid, 0.1)), float(np.quantile(resid, 0.9))) if len(resid) >= 20 else (0.0, 0.0)
            )
            hist_c = cx[ok, TRAFFIC_FEATURES.index("hist_target")]
            evaluation[f"{metric}:{h}"] = {
                "rows": int(ok.sum()),
                "mae": float(np.mean(np.abs(resid))) if len(resid) else None,
                "mae_history": float(np.mean(np.abs(cy[ok] - hist_c))) if len(resid) else None,
            }
    return TrafficModel(boosters, bands, tables, grid.time(grid.minutes), {"traffic": evaluation})


# ---------------------------------------------------------------- inference


def predict_all(
    grid: Grid,
    devices: list[Device],
    tide: TideModel,
    flood: FloodModel | None,
    traffic: TrafficModel | None,
) -> list[Forecast]:
    """Forecasts for every device at the origin that ends ``grid`` (its last minute is the newest data).

    A device the model cannot serve (no model yet, too little recent data) gets persistence.
    """
    started = time.perf_counter()
    last = np.array([grid.minutes - 1])
    out: list[Forecast] = []
    fs = flood_series(grid, devices, tide)
    if flood is not None:
        flood.attach(fs)
    for device_id, s in fs.items():
        for h in FLOOD_HORIZONS:
            x = s.matrix(last, h)
            level = x[0, 0]
            if not np.isfinite(level):
                continue
            if flood is not None and h in flood.boosters:
                lo, mid, hi = flood.predict_rows(x, h)
                out.append(Forecast(device_id, FLOOD_METRICS[0], h, float(mid[0]), float(lo[0]), float(hi[0]), "model"))
            else:
                out.append(Forecast(device_id, FLOOD_METRICS[0], h, float(level), None, None, "persistence"))
    tables = traffic.tables if traffic is not None else {}
    ts = traffic_series(grid, devices, tables) if traffic is not None else {}
    for d in devices:
        if d.kind != "traffic":
            continue
        for metric in TRAFFIC_METRICS:
            detector = ts.get((d.device_id, metric))
            for h in TRAFFIC_HORIZONS:
                if detector is not None and traffic is not None and (metric, h) in traffic.boosters:
                    x = detector.matrix(last, h)
                    if np.isfinite(x[0, 0]):
                        lo, mid, hi = traffic.predict_rows(x, metric, h)
                        out.append(Forecast(d.device_id, metric, h, float(mid[0]), float(lo[0]), float(hi[0]), "model"))
                        continue
                now = persistence(grid.get(d.device_id, metric), last)[0]
                if np.isfinite(now):
                    out.append(Forecast(d.device_id, metric, h, float(now), None, None, "persistence"))
    logger.debug("%d forecasts in %.3f s", len(out), time.perf_counter() - started)
    return out

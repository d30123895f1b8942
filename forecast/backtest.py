"""Rolling-origin backtest: for each of the last ``days`` days, train on everything before it, forecast every
minute of it, and score against what was then stored - the way the daily retraining runs in production.

Scores per kind, metric, horizon and method: MAE, RMSE and (for the model) 80 %-interval coverage; flood
rows also for "wet" origins only (water, or rain at or around the sensor), where the skill matters.
Flood level crossings (warning and danger, per sensor's levels): a crossing is a rise to the level after
being at least REARM_CM below it; the model "predicts" it when, at an origin within 120 minutes before,
the level was below and a median forecast reached it. Lead time is from the first such origin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.data import FLOOD_METRICS, Device, Grid
from forecast.features import WEEK_MIN, FloodSeries, at, ffill, history_average, lookup
from forecast.models import (
    FLOOD_HORIZONS,
    TRAFFIC_HORIZONS,
    FloodModel,
    TrafficModel,
    _wet,
    flood_series,
    history_tables,
    traffic_series,
    train_flood,
    train_traffic,
)
from forecast.tide import TideModel

logger = logging.getLogger(__name__)

REARM_CM = 2.0  # a level must fall this far below a threshold before a new crossing counts (sensor noise)
ALARM_WINDOW_MIN = max(FLOOD_HORIZONS)
# Alarms raised at these chances of reaching the level (forecast.outlook.chance): 0.5 is the median (the shipped
# flood_forecast rule), 0.1 the upper bound of the 80 % interval: earlier alarms, more of them false.
ALARM_CHANCES = (0.5, 0.3, 0.1)
MERGE_GAP_MIN = 10  # alarm minutes this close belong to one alarm


@dataclass
class Scores:
    """Accumulated errors of one (kind, metric, horizon, method)."""

    abs_sum: float = 0.0
    sq_sum: float = 0.0
    n: int = 0
    covered: int = 0
    with_interval: int = 0

    def add(self, pred: np.ndarray, y: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> None:
        """Add the finite pairs."""
        ok = np.isfinite(pred) & np.isfinite(y)
        err = pred[ok] - y[ok]
        self.abs_sum += float(np.abs(err).sum())
        self.sq_sum += float((err**2).sum())
        self.n += int(ok.sum())
        if lo is not None and hi is not None:
            self.covered += int(((lo[ok] <= y[ok]) & (y[ok] <= hi[ok])).sum())
            self.with_interval += int(ok.sum())

    def row(self) -> dict[str, Any]:
        """MAE, RMSE, coverage (None without intervals) and n."""
        return {
            "n": self.n,
            "mae": self.abs_sum / self.n if self.n else None,
            "rmse": (self.sq_sum / self.n) ** 0.5 if self.n else None,
            "coverage": self.covered / self.with_interval if self.with_interval else None,
        }


def crossings(y: np.ndarray, level: float, start: int, end: int) -> list[int]:
    """Minutes in [start, end) at which ``y`` rises to ``level`` after being REARM_CM below it."""
    armed = False
    found = []
    for i in range(max(start - 180, 0), end):  # arm on the hours before the window
        v = y[i]
        if not np.isfinite(v):
            continue
        if v < level - REARM_CM:
            armed = True
        elif v >= level and armed:
            armed = False
            if i >= start:
                found.append(i)
    return found


def score_crossings(alarm: np.ndarray, events: list[int], offset: int) -> dict[str, Any]:
    """Hits, misses, lead times and false alarms of an alarm series (index = origin - ``offset``)."""
    leads = []
    previous = -(10**9)
    for c in events:
        # Alarms raised before the previous crossing belonged to it.
        first = max(c - ALARM_WINDOW_MIN, previous + 1)
        window = alarm[max(first - offset, 0) : max(c - offset, 0)]
        on = np.flatnonzero(window)
        leads.append(int(len(window) - on[0]) if len(on) else None)
        previous = c
    false_alarms = 0
    on = np.flatnonzero(alarm)
    if len(on):
        breaks = np.flatnonzero(np.diff(on) > MERGE_GAP_MIN)
        starts = np.concatenate(([on[0]], on[breaks + 1])) + offset
        ends = np.concatenate((on[breaks], [on[-1]])) + offset
        for a, b in zip(starts, ends, strict=True):
            if not any(a < c <= b + ALARM_WINDOW_MIN for c in events):
                false_alarms += 1
    return {"leads": leads, "false_alarms": false_alarms}


def _head(grid: Grid, end: int) -> Grid:
    """The grid cut at minute ``end`` (views, no copy): what existed at that origin."""
    return Grid(grid.start, end, {k: v[:end] for k, v in grid.series.items()})


Score = Callable[..., None]  # score(key, pred, y, *band): add forecasts to the scores of ``key``


def run_backtest(
    grid: Grid, devices: list[Device], tide: TideModel, days: int, threads: int = 2, stride: int = 1
) -> dict[str, Any]:
    """Backtest the last ``days`` days of ``grid``; origins every ``stride`` minutes."""
    test_start = grid.minutes - days * 1440
    if test_start < 3 * 1440:
        raise ValueError(
            f"a {days}-day backtest needs at least {days + 3} days of history (have {grid.minutes / 1440:.1f})"
        )
    scores: dict[tuple[str, str, int, str], Scores] = {}
    levels = {d.device_id: d for d in devices if d.kind == "flood"}
    alarms = {
        (d, name, c): np.zeros(days * 1440, dtype=bool)
        for d in levels
        for name in ("warning", "danger")
        for c in ALARM_CHANCES
    }
    fs = flood_series(grid, devices, tide)  # features read only minutes <= each origin: safe on the whole grid
    epoch = np.concatenate((grid.epoch(), grid.epoch()[-1] + 60.0 * np.arange(1, 121)))
    train_seconds = []

    def score(key: tuple[str, str, int, str], pred: np.ndarray, y: np.ndarray, *band: np.ndarray) -> None:
        scores.setdefault(key, Scores()).add(pred, y, *band) if band else scores.setdefault(key, Scores()).add(pred, y)

    for day in range(days):
        cut = test_start + day * 1440
        past = _head(grid, cut)
        started = time.process_time()
        flood: FloodModel | None = train_flood(past, devices, tide, threads)
        traffic: TrafficModel | None = train_traffic(past, devices, threads)
        train_seconds.append(time.process_time() - started)
        logger.info("backtest day %d/%d: trained in %.1f CPU-s", day + 1, days, train_seconds[-1])
        last = np.arange(cut - 1, min(cut + 1439, grid.minutes - 1), stride)
        if flood is not None:
            flood.attach(fs)
        for device_id, s in fs.items():
            best = _score_flood(score, s, flood, grid, past, epoch, last, device_id)
            device = levels[device_id]
            now = at(s.level, last)
            for name, threshold in (("warning", device.warning_cm), ("danger", device.danger_cm)):
                for c in ALARM_CHANCES:
                    on = (np.nan_to_num(now, nan=np.inf) < threshold) & (best[c] >= threshold)
                    alarms[(device_id, name, c)][last - test_start + 1] = on
        if traffic is not None:
            _score_traffic(score, traffic, grid, devices, past, cut, epoch, last)

    results = [
        {"kind": k, "metric": m, "horizon_min": h, "method": meth, **s.row()} for (k, m, h, meth), s in scores.items()
    ]
    results.sort(key=lambda r: (r["kind"], r["metric"], r["horizon_min"], r["method"]))
    return {
        "days": days,
        "test_from": grid.time(test_start),
        "test_until": grid.time(grid.minutes),
        "results": results,
        "crossings": _crossings_report(fs, levels, alarms, test_start, grid.minutes),
        "train_cpu_s": train_seconds,
    }


def _score_flood(
    score: Score,
    s: FloodSeries,
    flood: FloodModel | None,
    grid: Grid,
    past: Grid,
    epoch: np.ndarray,
    last: np.ndarray,
    device_id: str,
) -> dict[float, np.ndarray]:
    """Score one flood sensor's forecasts from the origins ``last``; returns, per alarm chance, the highest level
    reached with that chance at each origin over the horizons (what an alarm would be raised on)."""
    hist = history_average(past.get(device_id, FLOOD_METRICS[0]), past.epoch())
    best = {c: np.full(len(last), -np.inf) for c in ALARM_CHANCES}
    for h in FLOOD_HORIZONS:
        x = s.matrix(last, h)
        y = at(s.level, last + h)
        ok = last + h < grid.minutes
        y = np.where(ok, y, np.nan)
        wet = _wet(x)
        persist = x[:, 0]
        hist_pred = lookup(hist, at(epoch, last + h))
        if flood is None:
            continue
        lo, mid, hi = flood.predict_rows(x, h)
        mid = np.where(np.isfinite(persist), mid, np.nan)
        for subset, mask in (("flood", np.ones(len(last), bool)), ("flood (wet)", wet)):
            score((subset, FLOOD_METRICS[0], h, "model"), mid[mask], y[mask], lo[mask], hi[mask])
            score((subset, FLOOD_METRICS[0], h, "persistence"), persist[mask], y[mask])
            score((subset, FLOOD_METRICS[0], h, "history"), hist_pred[mask], y[mask])
        for c in best:
            # The level reached with chance c (outlook.chance: 50 % at the median, 10 % at the upper bound).
            reached = mid + (hi - mid) * (0.5 - c) / 0.4
            best[c] = np.maximum(best[c], np.nan_to_num(reached, nan=-np.inf))
    return best


def _score_traffic(
    score: Score,
    traffic: TrafficModel,
    grid: Grid,
    devices: list[Device],
    past: Grid,
    cut: int,
    epoch: np.ndarray,
    last: np.ndarray,
) -> None:
    """Score every traffic series' forecasts from the origins ``last``, with the baselines beside the model."""
    tables = history_tables(past, devices, cut)
    for (device_id, metric), ts in traffic_series(grid, devices, tables).items():
        value = ffill(grid.get(device_id, metric))
        for h in TRAFFIC_HORIZONS:
            x = ts.matrix(last, h)
            y = np.where(last + h < grid.minutes, at(grid.get(device_id, metric), last + h), np.nan)
            lo, mid, hi = traffic.predict_rows(x, metric, h)
            score(("traffic", metric, h, "model"), mid, y, lo, hi)
            score(("traffic", metric, h, "persistence"), at(value, last), y)
            score(("traffic", metric, h, "history"), lookup(tables[device_id][metric], at(epoch, last + h)), y)
            score(("traffic", metric, h, "seasonal_naive"), at(grid.get(device_id, metric), last + h - WEEK_MIN), y)


def _crossings_report(
    fs: dict[str, FloodSeries],
    levels: dict[str, Device],
    alarms: dict[tuple[str, str, float], np.ndarray],
    test_start: int,
    end: int,
) -> list[dict[str, Any]]:
    """Per level (warning, danger): the crossings in the test days, hits, misses, false alarms and lead times."""
    cross = []
    for name, c in ((n, c) for n in ("warning", "danger") for c in ALARM_CHANCES):
        leads: list[int | None] = []
        false_alarms = 0
        for device_id, s in fs.items():
            threshold = levels[device_id].warning_cm if name == "warning" else levels[device_id].danger_cm
            events = crossings(s.level, threshold, test_start, end)
            got = score_crossings(alarms[(device_id, name, c)], events, test_start - 1)
            leads += got["leads"]
            false_alarms += got["false_alarms"]
        hits = [v for v in leads if v is not None]
        cross.append(
            {
                "level": name,
                "chance": c,
                "crossings": len(leads),
                "hits": len(hits),
                "hits_30min": sum(1 for v in hits if v >= 30),
                "misses": len(leads) - len(hits),
                "false_alarms": false_alarms,
                "median_lead_min": float(np.median(hits)) if hits else None,
            }
        )
    return cross


def format_table(report: dict[str, Any]) -> str:
    """The backtest as a fixed-width text table (what the CLI prints)."""
    lines = [
        f"rolling-origin backtest, {report['days']} days: {report['test_from']:%Y-%m-%d %H:%M} to "
        f"{report['test_until']:%Y-%m-%d %H:%M} UTC (retrained before each day on everything earlier)",
        "",
        f"{'kind':<12} {'metric':<15} {'h':>4} {'method':<15} {'n':>8} "
        f"{'MAE':>8} {'RMSE':>8} {'cover80':>8} {'vs persist':>10}",
    ]
    base = {
        (r["kind"], r["metric"], r["horizon_min"]): r["mae"] for r in report["results"] if r["method"] == "persistence"
    }
    for r in report["results"]:
        ref = base.get((r["kind"], r["metric"], r["horizon_min"]))
        rel = f"{100 * (r['mae'] / ref - 1):+.0f} %" if r["mae"] is not None and ref else ""
        cover = f"{100 * r['coverage']:.1f} %" if r["coverage"] is not None else ""
        mae = f"{r['mae']:.3f}" if r["mae"] is not None else "-"
        rmse = f"{r['rmse']:.3f}" if r["rmse"] is not None else "-"
        head = f"{r['kind']:<12} {r['metric']:<15} {r['horizon_min']:>4} {r['method']:<15} {r['n']:>8}"
        lines.append(f"{head} {mae:>8} {rmse:>8} {cover:>8} {rel:>10}")
    lines += [
        "",
        f"{'crossing':<10} {'events':>7} {'hits':>6} {'>=30min':>8} {'misses':>7} {'false':>6} {'median lead':>12}",
    ]
    for c in report["crossings"]:
        lead = f"{c['median_lead_min']:.0f} min" if c["median_lead_min"] is not None else "-"
        counts = f"{c['crossings']:>7} {c['hits']:>6} {c['hits_30min']:>8} {c['misses']:>7} {c['false_alarms']:>6}"
        lines.append(f"{c['level'] + ' ' + str(c['chance']):<10} {counts} {lead:>12}")
    cpu = report["train_cpu_s"]
    lines.append(f"\ntraining: {len(cpu)} runs, {min(cpu):.1f}-{max(cpu):.1f} CPU-s each" if cpu else "")
    return "\n".join(lines)

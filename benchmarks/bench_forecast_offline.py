"""Forecast backtest without a database: the simulated city's history made in memory, then the rolling backtest.

For trying model changes in minutes: `simulators.history.simulate` makes the readings a backfill would
store (same models, seed, noise and device faults), their minute means stand in for ``rollups_1m``, and
``forecast.backtest.run_backtest`` scores them as ``ioc forecast backtest`` does. The forecaster still
sees only those minute series (the Grid), never the simulator's state. The figures in docs/forecasting.md
marked "offline" come from here; the final ones from ``make bench-forecast`` on a database.

    python benchmarks/bench_forecast_offline.py --history-days 17 --days 3 --stride 2
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from forecast import backtest
from forecast.data import TRAFFIC_METRICS, Device, Grid
from forecast.tide import load_tide
from ioc.fleet import load_fleet
from ioc.kinds import load_kinds
from ioc.settings import REPO_ROOT
from ioc.thresholds import DEFAULT_DANGER_CM, DEFAULT_WARNING_CM
from simulators.faults import FaultSpec
from simulators.history import simulate, span_of

METRICS = ("water_level_cm", "rainfall_mm_h", *TRAFFIC_METRICS)
SPAN = timedelta(hours=6)  # as the backfill's spans


def history_grid(fleet_file: str, days: int, end: datetime, seed: int, faults: str) -> Grid:
    """Minute means of the simulated readings of the ``days`` before ``end`` (what rollups_1m would hold)."""
    fleet = load_fleet(fleet_file, load_kinds())
    start = end - timedelta(days=days)
    minutes = days * 1440
    sums: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    edge = start
    while edge < end:
        history, _ = simulate(fleet, seed, span_of(edge, edge, edge + SPAN, False, FaultSpec.parse(faults)))
        for (device_id, metric, part), us, values in history._arrays:
            if part or metric not in METRICS:
                continue
            idx = (us // 1_000_000 - int(start.timestamp())) // 60
            total, count = sums.setdefault((device_id, metric), (np.zeros(minutes), np.zeros(minutes)))
            np.add.at(total, idx, values)
            np.add.at(count, idx, 1)
        edge += SPAN
    series = {k: np.where(c > 0, s / np.maximum(c, 1), np.nan) for k, (s, c) in sums.items()}
    return Grid(start, minutes, series)


def devices(fleet_file: str) -> list[Device]:
    """The fleet's flood sensors and traffic detectors as the forecaster's registry reads them."""

    def level(meta: dict[str, object], key: str, default: float) -> float:
        value = meta.get(key)
        return float(value) if isinstance(value, int | float) else default

    return sorted(
        (
            Device(
                d.device_id,
                d.kind,
                d.lat,
                d.lon,
                d.zone,
                level(d.metadata, "warning_cm", DEFAULT_WARNING_CM),
                level(d.metadata, "danger_cm", DEFAULT_DANGER_CM),
            )
            for d in load_fleet(fleet_file, load_kinds()).devices
            if d.kind in ("flood", "traffic")
        ),
        key=lambda d: d.device_id,
    )


def main() -> int:
    """Make the history, backtest it, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history-days", type=int, default=17, help="history made, backtest days included")
    parser.add_argument("--days", type=int, default=3, help="days backtested (the last ones)")
    parser.add_argument("--stride", type=int, default=2, help="minutes between forecast origins")
    parser.add_argument("--end", type=datetime.fromisoformat, default=datetime(2026, 11, 27, 18, tzinfo=UTC))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", default="0.002")
    parser.add_argument("--fleet", default=str(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml"))
    a = parser.parse_args()
    started = time.perf_counter()
    grid = history_grid(a.fleet, a.history_days, a.end, a.seed, a.faults)
    made = time.perf_counter() - started
    report = backtest.run_backtest(grid, devices(a.fleet), load_tide(), a.days, threads=1, stride=a.stride)
    print(backtest.format_table(report))
    print(f"history made in {made:.0f} s; backtest {time.perf_counter() - started - made:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

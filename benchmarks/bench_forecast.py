"""Forecast bench (issue 13): training time, inference time and memory, then the 7-day rolling backtest.

Runs against the database beside `ioc up` (or IOC_DATABASE_URL) holding simulated history: on a scratch
stack, `ioc simulate --backfill 21` first. Prints the measurements and the backtest table, stores the
backtest in forecast_backtests (the API's /api/v1/forecasts/skill reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from datetime import timedelta

from ioc.cli import _settings, build_parser
from ioc.db import create_pool


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(days: int, history: int, rounds: int) -> int:
    """Measure and print; returns the exit code."""
    settings = _settings(build_parser().parse_args(["forecast", "predict"]))
    before = _rss_mb()
    from forecast import backtest, inference, training
    from forecast.data import load_devices
    from forecast.tide import load_tide

    tide = load_tide(settings.forecast_tide_file)
    pool = await create_pool(settings.resolved_database_url(), max_size=1)
    try:
        async with pool.acquire() as conn:
            newest = await conn.fetchval("SELECT max(bucket) FROM rollups_1m")
            if newest is None:
                print("no stored history: run `ioc simulate --backfill 21` first", file=sys.stderr)
                return 1
            until = newest.replace(second=0, microsecond=0) + timedelta(minutes=1)  # the newest data's origin
            done = await training.train_all(conn, tide, history, settings.forecast_threads, until=until)
            print(
                f"training: {done.minutes / 1440:.1f} days of history, {done.wall_seconds:.1f} s wall, "
                f"{done.cpu_seconds:.1f} CPU-s (threads={settings.forecast_threads}), versions {done.model_ids}"
            )
            forecaster = inference.Forecaster(tide)
            timings, cpu = [], []
            rows = 0
            for _ in range(rounds):
                started_cpu = time.process_time()
                rows, seconds = await forecaster.round(conn, until)
                timings.append(seconds)
                cpu.append(time.process_time() - started_cpu)
            print(
                f"inference: {rows} forecasts per round, median {statistics.median(timings):.3f} s wall "
                f"({statistics.median(cpu):.3f} CPU-s), max {max(timings):.3f} s over {rounds} rounds "
                f"(the first loads the models); peak RSS {_rss_mb():.0f} MB "
                f"({_rss_mb() - before:.0f} MB above the process before the forecaster was imported, training included)"
            )
            if days == 0:
                return 0
            grid = await training.history(conn, until, history)
            devices = await load_devices(conn)
        started = time.perf_counter()
        report = await asyncio.to_thread(backtest.run_backtest, grid, devices, tide, days, settings.forecast_threads)
        report["seconds"] = time.perf_counter() - started
        async with pool.acquire() as conn:
            from forecast import store

            await store.save_backtest(
                conn, days, report["test_from"], report["test_until"], report["results"], report["crossings"]
            )
    finally:
        await pool.close()
    print(backtest.format_table(report))
    print(f"backtest took {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=7, help="days backtested (0: training and inference only)")
    parser.add_argument("--history-days", type=int, default=21, help="history loaded, backtest days included")
    parser.add_argument("--rounds", type=int, default=10)
    a = parser.parse_args()
    sys.exit(asyncio.run(main(a.days, a.history_days, a.rounds)))

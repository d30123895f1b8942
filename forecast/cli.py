"""``ioc forecast``: train the models, run one forecast round, backtest, print the tide."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ioc.cli import positive_int
from ioc.db import create_pool
from ioc.errors import ConfigError
from ioc.settings import Settings

LOCAL = timedelta(hours=7)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sub-commands of ``ioc forecast``."""
    sub = parser.add_subparsers(dest="forecast_command", required=True)
    train = sub.add_parser("train", help="train the flood and traffic models now and store them as new versions")
    train.add_argument(
        "--days", type=positive_int, default=None, help="history to learn from (default IOC_FORECAST_HISTORY_DAYS)"
    )
    predict = sub.add_parser("predict", help="run forecast rounds for every device and store them")
    predict.add_argument("--at", type=datetime.fromisoformat, default=None, help="origin (ISO time; default now)")
    predict.add_argument("--rounds", type=positive_int, default=1, help="rounds to run and time (default 1)")
    back = sub.add_parser("backtest", help="rolling-origin evaluation of the last DAYS days (stored and printed)")
    back.add_argument("--days", type=positive_int, default=7, help="days to evaluate (default 7)")
    back.add_argument(
        "--history-days", type=int, default=None, help="history before them (default all stored, at most 60)"
    )
    back.add_argument("--stride", type=positive_int, default=1, help="minutes between forecast origins (default 1)")
    back.add_argument("--json", action="store_true", help="print the result as JSON")
    tide = sub.add_parser("tide", help="print the predicted tide's high and low waters")
    tide.add_argument("--hours", type=float, default=48.0)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``ioc forecast ...``; returns the exit code."""
    from forecast.tide import load_tide

    try:
        tide = load_tide(settings.forecast_tide_file)
    except ConfigError as exc:
        print(f"ioc forecast: {exc}", file=sys.stderr)
        return 2
    if args.forecast_command == "tide":
        now = time.time()
        for t, level, what in tide.extremes(now, now + args.hours * 3600):
            when = datetime.fromtimestamp(t, UTC) + LOCAL
            print(f"{when:%a %d %b %H:%M} (UTC+7)  {what:<4}  {level:5.2f} m")
        return 0
    try:
        return asyncio.run(_run_db(args, settings, tide))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"ioc forecast: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"ioc forecast {args.forecast_command}: {exc}", file=sys.stderr)
        return 2


async def _run_db(args: argparse.Namespace, settings: Settings, tide: Any) -> int:
    from forecast import backtest, inference, store, training
    from forecast.data import load_devices

    pool = await create_pool(settings.resolved_database_url(), max_size=1)
    try:
        async with pool.acquire() as conn:
            if args.forecast_command == "train":
                days = args.days or settings.forecast_history_days
                done = await training.train_all(conn, tide, days, settings.forecast_threads)
                print(
                    f"trained on {done.minutes / 1440:.1f} days in {done.wall_seconds:.1f} s "
                    f"({done.cpu_seconds:.1f} CPU-s): flood version {done.model_ids['flood']}, "
                    f"traffic version {done.model_ids['traffic']}"
                )
                return 0
            if args.forecast_command == "predict":
                forecaster = inference.Forecaster(tide)
                for _ in range(args.rounds):
                    cpu = time.process_time()
                    rows, seconds = await forecaster.round(conn, args.at)
                    print(f"{rows} forecasts stored in {seconds:.3f} s ({time.process_time() - cpu:.3f} CPU-s here)")
                return 0
            # backtest
            newest = await conn.fetchval("SELECT max(bucket) FROM rollups_1m")
            oldest = await conn.fetchval("SELECT min(bucket) FROM rollups_1m")
            if newest is None:
                raise ValueError("no stored readings to backtest on")
            until = newest.replace(second=0, microsecond=0) + timedelta(minutes=1)
            history = args.history_days or min(60, int((until - oldest).total_seconds() // 86400) - args.days)
            grid = await training.history(conn, until, history + args.days)
            devices = await load_devices(conn)
            started = time.perf_counter()
            report = await asyncio.to_thread(
                backtest.run_backtest, grid, devices, tide, args.days, settings.forecast_threads, args.stride
            )
            report["seconds"] = time.perf_counter() - started
            await store.save_backtest(
                conn, args.days, report["test_from"], report["test_until"], report["results"], report["crossings"]
            )
    finally:
        await pool.close()
    if args.json:
        print(json.dumps(report, default=str, indent=1))
    else:
        print(backtest.format_table(report))
        print(f"backtest took {report['seconds']:.0f} s; stored in forecast_backtests")
    return 0

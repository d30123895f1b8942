"""``ioc simulate``: argument definitions and the entry point the ioc CLI registers."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from ioc.errors import ConfigError
from ioc.fleet import Fleet, load_fleet
from ioc.kinds import load_kinds
from ioc.settings import Settings
from simulators.backfill import backfill
from simulators.faults import FaultSpec
from simulators.load import run_load, write_manifest
from simulators.progress import Bar, Progress
from simulators.publisher import RunSummary, play
from simulators.runner import Simulation
from simulators.scenarios import SCENARIOS

logger = logging.getLogger(__name__)

DRY_RUN_DEFAULT_S = 60.0


def _start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2025-10-23T15:00+07:00)"
        ) from None


def _faults(text: str) -> FaultSpec:
    try:
        return FaultSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ioc simulate``."""
    parser.add_argument(
        "--fleet", type=Path, help="fleet file (.yaml, .csv, .geojson); default IOC_FLEET_FILE"
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed and start, same messages (default 0)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="model time runs N times faster than wall time"
    )
    parser.add_argument("--start", type=_start, help="model start, ISO 8601 (no zone = UTC+7); default now")
    parser.add_argument(
        "--duration", type=float, help="wall seconds to run; default until SIGINT/SIGTERM (10 s with --load)"
    )
    parser.add_argument("--scenario", choices=SCENARIOS, help="storm | rush-hour | incident | quiet")
    parser.add_argument(
        "--faults",
        type=_faults,
        help="RATE, or per kind: drop=0.01,malformed=0.02,... (default none; with --backfill IOC_SIM_BACKFILL_FAULTS)",
    )
    parser.add_argument("--fault-log", type=Path, help="write one JSON object per injected fault")
    parser.add_argument("--summary", type=Path, help="write the run's summary as JSON")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1, help="QoS of telemetry (default 1)")
    parser.add_argument("--dry-run", type=Path, metavar="FILE", help="write JSON lines instead of publishing")
    parser.add_argument(
        "--backfill",
        type=float,
        metavar="DAYS",
        help="store DAYS days of history before now in the database (only where no readings are), then exit",
    )
    load = parser.add_argument_group("load mode")
    load.add_argument("--load", type=float, metavar="RATE", help="publish RATE canonical messages per second")
    load.add_argument("--devices", type=int, default=1000, help="load mode: number of LOAD-nnnnn devices")
    load.add_argument("--connections", type=int, default=4, help="load mode: broker connections (default 4)")
    load.add_argument("--manifest", type=Path, help="load mode: write what was sent and acknowledged")


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` so the run ends cleanly (offline published, connections closed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        logger.info("signal %s: stopping the simulation", signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``ioc simulate``; returns the process exit code."""
    if args.load is not None:
        return _run_load(args, settings)
    try:
        fleet = load_fleet(args.fleet or settings.fleet_file, load_kinds(settings.kinds_file))
    except ConfigError as exc:
        print(f"ioc simulate: {exc}", file=sys.stderr)
        return 2
    if args.backfill is not None:
        return _run_backfill(args, settings, fleet)
    sim = Simulation(fleet, args.seed, args.speed, args.start, args.scenario, args.faults, qos=args.qos)
    if args.dry_run is not None:
        summary = dry_run(sim, args.dry_run, args.duration or DRY_RUN_DEFAULT_S)
    else:
        stop = threading.Event()
        progress = Progress("simulate")
        with _stop_on_signals(stop):
            try:
                summary = play(sim, settings.resolved_mqtt_url(), args.duration, stop, progress=progress)
            except ConnectionError as exc:
                print(f"ioc simulate: {exc}", file=sys.stderr)
                return 1
        progress.finish(
            summary.sent, summary.errors, sum(summary.faults.values()), f", acked {summary.acked:,}"
        )
    _write_outputs(args, sim, summary)
    return 0


def _run_backfill(args: argparse.Namespace, settings: Settings, fleet: Fleet) -> int:
    if args.backfill <= 0:
        print("ioc simulate: --backfill needs a number of days above 0", file=sys.stderr)
        return 2
    if args.scenario or args.start or args.dry_run or args.duration:
        print(
            "ioc simulate: --backfill stores the natural city before now; "
            "it takes --seed, --faults and --fleet only",
            file=sys.stderr,
        )
        return 2
    bar = Bar("history")
    try:
        url = settings.resolved_database_url()
        result = backfill(settings, url, fleet, args.backfill, seed=args.seed, faults=args.faults, bar=bar)
    except (ValueError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"ioc simulate --backfill: {exc}", file=sys.stderr)
        return 1
    bar.finish(
        f"{result.rows:,} readings and {result.events:,} events in {result.spans} spans"
        f" ({result.lost:,} readings lost to device faults)"
        if result.spans
        else "nothing to do: every span of the window already holds readings"
    )
    return 0


def dry_run(sim: Simulation, path: Path, duration_s: float) -> RunSummary:
    """Write ``duration_s`` wall seconds of the simulation as JSON lines ``{"t", "topic", "payload_b64"}``."""
    summary = RunSummary(model_start=sim.start.isoformat())
    with open(path, "w", encoding="utf-8") as out:
        for message in sim.messages(duration_s * sim.speed):
            out.write(
                json.dumps(
                    {
                        "t": message.model_time.isoformat(),
                        "topic": message.topic,
                        "payload_b64": base64.b64encode(message.payload).decode(),
                    }
                )
                + "\n"
            )
            summary.sent += message.action != "drop"
    summary.channels.update(sim.counts)
    summary.faults.update(f["fault"] for f in sim.fault_log)
    summary.model_end = datetime.fromtimestamp(sim.now, UTC).isoformat()
    return summary


def _write_outputs(args: argparse.Namespace, sim: Simulation, summary: RunSummary) -> None:
    if args.fault_log is not None:
        with open(args.fault_log, "w", encoding="utf-8") as out:
            for record in sim.fault_log:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary.as_dict(), indent=1), encoding="utf-8")
    logger.info("simulation summary %s", json.dumps(summary.as_dict()))


def _run_load(args: argparse.Namespace, settings: Settings) -> int:
    duration = args.duration or 10.0
    progress = Progress("load")

    def tick(result: Any) -> None:
        progress.update(result.sent, result.errors, 0, f", acked {result.acked:,}")

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run_load(
            settings.resolved_mqtt_url(),
            args.load,
            args.devices,
            duration,
            args.qos,
            args.connections,
            args.seed,
            settings.topic_prefix,
            stop,
            tick,
        )

    try:
        result = asyncio.run(main())
    except (ConnectionError, OSError) as exc:
        print(f"ioc simulate --load: cannot reach the broker: {exc}", file=sys.stderr)
        return 1
    progress.finish(
        result.sent, result.errors, 0, f", acked {result.acked:,}, rate {result.rate_achieved:,.0f}/s"
    )
    if args.manifest is not None:
        write_manifest(result, str(args.manifest))
    return 0 if result.acked == result.sent or args.qos == 0 else 1

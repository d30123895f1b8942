"""Simulator benchmarks.

Load mode: 10,000 QoS 1 msg/s for 20 s from one process into a private Mosquitto, three times.
``.venv/bin/python benchmarks/bench_simulate.py [--rate 10000] [--seconds 20] [--runs 3]`` prints the
achieved publish rate (median of the runs), PUBACKs and what a mosquitto_sub subscriber received.

History: ``.venv/bin/python benchmarks/bench_simulate.py --backfill 14`` starts the embedded stack as
``ioc up`` does (a fresh PostgreSQL+TimescaleDB with fsync on, the demo fleet) and times the backfill of
``ioc up``'s first start with every worker: the last 26 hours (the wall's 24-hour charts and "vs
yesterday"), then the older days; it prints both times, the rows written and the machine's load."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ioc.broker import EmbeddedMosquitto
from ioc.fleet import load_fleet
from ioc.processes import free_port
from ioc.settings import Settings
from ioc.up import Stack
from simulators.backfill import FIRST_WAIT, MAX_WORKERS, plan, run
from simulators.load import LoadResult, run_load
from simulators.progress import Bar


def subscriber(port: int, out: Path) -> subprocess.Popen[bytes]:
    """mosquitto_sub writing one line per received telemetry message."""
    handle = out.open("wb")
    return subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-t",
            "ioc/v1/flood/+/telemetry",
            "-F",
            "%t",
        ],
        stdout=handle,
    )


def one_run(
    port: int, rate: float, seconds: float, devices: int, connections: int, work: Path, n: int
) -> tuple[LoadResult, int]:
    """One load run with a counting subscriber; returns the manifest and the subscriber's count."""
    lines = work / f"received-{n}.txt"
    sub = subscriber(port, lines)
    time.sleep(0.5)
    result = asyncio.run(run_load(f"mqtt://127.0.0.1:{port}", rate, devices, seconds, 1, connections, seed=n))
    deadline = time.monotonic() + 15
    received = 0
    while time.monotonic() < deadline:
        received = lines.read_bytes().count(b"\n")
        if received >= result.sent:
            break
        time.sleep(0.25)
    sub.terminate()
    sub.wait(5)
    return result, lines.read_bytes().count(b"\n")


def bench_backfill(days: float) -> None:
    """Time the history of a first ``ioc up`` on a fresh embedded stack.

    Besides wall time (which depends on what else runs), it reports the CPU seconds of the workers and the
    database, taken from the resource usage of this process's children once they have all ended."""
    work = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    os.chmod(work, 0o755)  # the postgres user reaches its cluster inside
    settings = Settings(state_dir=work / "state", db_port=free_port(), mqtt_port=free_port(), http_port=free_port())
    stack = Stack(settings)
    try:
        stack.prepare_state(reset=False)
        stack.start_services()
        stack.load_data(settings.fleet_file)
        fleet = load_fleet(settings.fleet_file)
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        jobs = plan(settings, stack.database_url, fleet, days)
        horizon = max(j.end for j in jobs) - FIRST_WAIT
        bar = Bar("last 26 h")
        first = run([j for j in jobs if j.end > horizon], bar=bar)
        bar.finish(f"{first.rows:,} readings")
        bar = Bar("older days")
        rest = run([j for j in jobs if j.end <= horizon], bar=bar)
        bar.finish(f"{rest.rows:,} readings")
        total = time.monotonic() - started
    finally:
        stack.stop()  # the database's CPU time is counted once its processes have ended
        shutil.rmtree(work, ignore_errors=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rows = first.rows + rest.rows
    print(
        f"history of {days:g} days, {MAX_WORKERS} workers, fsync on, load average {load:.1f} at the start "
        f"({os.cpu_count()} cores):\n"
        f"  last 26 h   {first.seconds:6.1f} s  {first.rows:>11,} readings\n"
        f"  older days  {rest.seconds:6.1f} s  {rest.rows:>11,} readings\n"
        f"  total       {total:6.1f} s  {rows:>11,} readings ({rows / total:,.0f}/s, as many rollups), "
        f"{first.events + rest.events:,} events\n"
        f"  CPU of workers and database: {cpu:,.0f} s ({cpu / total:.2f} cores busy on average)"
    )


def main() -> None:
    """Start a private broker, run the load several times, print the figures (or time the history)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backfill", type=float, metavar="DAYS", help="time the history of a first ioc up instead")
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if args.backfill is not None:
        bench_backfill(args.backfill)
        return
    if shutil.which("mosquitto_sub") is None:
        raise SystemExit("mosquitto_sub is needed for the receiving side")
    work = Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    broker = EmbeddedMosquitto(work / "mosquitto", free_port())
    broker.start(work / "mosquitto.log")
    rates, rows = [], []
    try:
        for n in range(args.runs):
            result, received = one_run(broker.port, args.rate, args.seconds, args.devices, args.connections, work, n)
            rates.append(result.rate_achieved)
            rows.append((result, received))
            print(
                f"run {n + 1}: sent {result.sent:,} at {result.rate_achieved:,.0f} msg/s, "
                f"PUBACK {result.acked:,}, subscriber received {received:,}, "
                f"connection errors {result.errors}"
            )
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"target {args.rate:,.0f} msg/s QoS 1 for {args.seconds:.0f} s over {args.connections} connections: "
        f"median achieved {statistics.median(rates):,.0f} msg/s; "
        f"PUBACK {sum(r.acked for r, _ in rows):,} of {sum(r.sent for r, _ in rows):,} sent; "
        f"subscriber received {sum(n for _, n in rows):,}"
    )


if __name__ == "__main__":
    main()

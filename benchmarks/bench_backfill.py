"""History bench (issue 12): the first `ioc up`'s 14 days of simulated history on a fresh embedded stack.

``make bench-backfill`` (or ``.venv/bin/python benchmarks/bench_backfill.py [--days 14] [--runs 3]``) starts,
for each run, a fresh PostgreSQL+TimescaleDB as ``ioc up`` does (fsync on) with the demo fleet, and fills the
history as the first ``ioc up`` does (newest first: the last 26 hours, then the older days, two worker
processes). It prints per run the machine's load average at the start, the wall seconds to the last 26 h and
to all days, the rows per second, and the CPU seconds of the workers and the database together; then the
medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ioc.cluster import remove_linked_clusters
from ioc.fleet import load_fleet
from ioc.processes import free_port
from ioc.settings import Settings
from ioc.up import Stack
from simulators.backfill import FIRST_WAIT, MAX_WORKERS, plan, run


@dataclass
class Figures:
    """One run's measurements."""

    load: float
    first_s: float
    total_s: float
    rows: int
    events: int
    cpu_s: float


def children_cpu() -> float:
    """CPU seconds of this process's ended children (the workers, and the database once stopped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(days: float) -> Figures:
    """Fill ``days`` of history into a fresh stack and measure it."""
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
        cpu = children_cpu()
        started = time.monotonic()
        jobs = plan(settings, stack.database_url, fleet, days)
        horizon = max(j.end for j in jobs) - FIRST_WAIT
        first = run([j for j in jobs if j.end > horizon])
        first_s = time.monotonic() - started
        rest = run([j for j in jobs if j.end <= horizon])
        total_s = time.monotonic() - started
    finally:
        stack.stop()  # the database's CPU time is counted once its processes have ended
        remove_linked_clusters(work)  # as root the cluster lives under /var/lib/ioc (ioc.cluster)
        shutil.rmtree(work, ignore_errors=True)
    return Figures(load, first_s, total_s, first.rows + rest.rows, first.events + rest.events, children_cpu() - cpu)


def main() -> None:
    """Run the bench and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"history of {args.days:g} days, {MAX_WORKERS} workers, fsync on, {os.cpu_count()} cores", flush=True)
    runs = []
    for n in range(args.runs):
        f = one_run(args.days)
        runs.append(f)
        print(
            f"run {n + 1}: load average {f.load:.1f} at the start; last 26 h {f.first_s:.1f} s; "
            f"all {f.total_s:.1f} s wall, {f.cpu_s:.1f} CPU-s; {f.rows:,} readings (as many rollups), "
            f"{f.events:,} events; {f.rows / f.total_s:,.0f} readings/s",
            flush=True,
        )
    med = statistics.median
    print(
        f"median of {len(runs)}: last 26 h {med(r.first_s for r in runs):.1f} s; "
        f"all {med(r.total_s for r in runs):.1f} s wall, {med(r.cpu_s for r in runs):.1f} CPU-s; "
        f"{med(r.rows / r.total_s for r in runs):,.0f} readings/s "
        f"(load averages at the start {', '.join(f'{r.load:.1f}' for r in runs)})"
    )


if __name__ == "__main__":
    main()

"""History bench (issue 12): the first `ioc up`'s 14 days of simulated history on a fresh embedded stack.

``make bench-backfill`` (or ``.venv/bin/python benchmarks/bench_backfill.py [--days 14] [--runs 3]``) starts,
for each run, a fresh PostgreSQL+TimescaleDB as ``ioc up`` does (fsync on) with the demo fleet, and fills the
history as the first ``ioc up`` does (newest first: the last 26 hours, then the older days, two worker
processes). It prints per run the machine's load average at the start, the wall seconds to the last 26 h and
to all days, the rows per second, and the CPU seconds of the workers and the database together; then the
medians. ``--phases`` instead splits the CPU time of one run: the simulation and encoding (in this process),
then each table's COPY on one connection (the database backend's own CPU time), the WAL written and the
tables' sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ioc import bulkload
from ioc.cluster import remove_linked_clusters
from ioc.db import init_connection
from ioc.fleet import load_fleet
from ioc.processes import free_port
from ioc.settings import Settings
from ioc.up import Stack
from simulators.backfill import FIRST_WAIT, MAX_WORKERS, plan, run, simulate


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


def backend_cpu(pid: int) -> float:
    """CPU seconds of a local process so far (the database backend serving a connection)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _copy_phases(url: str, histories: list[bulkload.History]) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        wal_start = await conn.fetchval("SELECT pg_current_wal_lsn()")
        cpu = {"measurements": 0.0, "rollups_1m": 0.0}
        for history in histories:
            raw, rollups = history.copy_data()
            async with conn.transaction():
                for table, columns, data in (
                    ("measurements", bulkload.MEASUREMENT_COLUMNS, raw),
                    ("rollups_1m", bulkload.ROLLUP_COLUMNS, rollups),
                ):
                    before = backend_cpu(pid)
                    await conn.copy_to_table(table, source=io.BytesIO(data), columns=columns, format="binary")
                    cpu[table] += backend_cpu(pid) - before
        wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", wal_start)
        sizes = {
            t: float(await conn.fetchval("SELECT sum(total_bytes) FROM hypertable_detailed_size($1)", t)) for t in cpu
        }
    finally:
        await conn.close()
    return {
        **{f"{t} CPU-s": v for t, v in cpu.items()},
        "WAL GB": float(wal) / 1e9,
        **{f"{t} GB": v / 1e9 for t, v in sizes.items()},
    }


def phases(days: float) -> None:
    """Where one run's CPU time goes: simulation and encoding, then each table's COPY (serially)."""
    work = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    os.chmod(work, 0o755)
    settings = Settings(state_dir=work / "state", db_port=free_port(), mqtt_port=free_port(), http_port=free_port())
    stack = Stack(settings)
    try:
        stack.prepare_state(reset=False)
        stack.start_services()
        stack.load_data(settings.fleet_file)
        jobs = plan(settings, stack.database_url, load_fleet(settings.fleet_file), days)
        started = time.process_time()
        histories = [simulate(job)[0] for job in jobs]
        made = time.process_time() - started
        print(f"load average {os.getloadavg()[0]:.1f}; {len(jobs)} spans, {sum(h.rows for h in histories):,} readings")
        print(f"simulation and binary COPY encoding: {made:.1f} CPU-s", flush=True)
        for name, value in asyncio.run(_copy_phases(stack.database_url, histories)).items():
            print(f"{name}: {value:.2f}")
    finally:
        stack.stop()
        remove_linked_clusters(work)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Run the bench and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="one run, its CPU time split by phase")
    args = parser.parse_args()
    if args.phases:
        phases(args.days)
        return
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

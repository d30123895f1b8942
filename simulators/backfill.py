"""History for the simulated city: the days before "now" made by the live simulation's own models, stored.

`plan (the 6-hour spans without readings, newest first) -> worker processes: simulators.history.simulate
 -> ioc.bulkload.write (binary COPY of rows and finished rollups, one transaction per span)`

The first `ioc up` with simulators fills IOC_SIM_BACKFILL_DAYS (14) days; `ioc simulate --backfill DAYS`
fills more. Only stretches without readings are filled (before the first and after the last reading of
each span), so a second run adds nothing and a run after a pause fills the pause. Spans run in worker
processes, newest first, each in its own transaction: an interrupted run leaves whole spans, and the
next run fills the rest. Camera snapshots are not made for history (events are).
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context

import asyncpg

from ioc import bulkload
from ioc.db import init_connection
from ioc.fleet import Fleet, load_fleet
from ioc.kinds import load_kinds
from ioc.settings import Settings
from simulators import history
from simulators.faults import FaultSpec
from simulators.history import Span
from simulators.progress import Bar

logger = logging.getLogger(__name__)

SPAN_S = 6 * 3600  # one worker task and one transaction; spans start at multiples of this (UTC)
MAX_WORKERS = 2
FIRST_WAIT = timedelta(hours=26)  # what `ioc up` waits for: 24-hour charts and "the same time yesterday"


@dataclass(frozen=True)
class Job:
    """One span of history for a worker process to simulate and write."""

    database_url: str
    fleet: Fleet
    seed: int
    faults: FaultSpec
    start: datetime
    end: datetime
    newest: bool  # the span that ends the history: it sets latest values and device status


@dataclass
class Result:
    """What a backfill wrote."""

    start: datetime
    end: datetime
    spans: int = 0
    rows: int = 0
    events: int = 0
    lost: int = 0  # readings a fault made the ingest refuse (quarantined when live)
    seconds: float = 0.0
    stored_s: float = 0.0  # seconds of history written
    stopped: bool = False  # stopped before every span was written


def spans(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at multiples of SPAN_S, newest first."""
    out = []
    edge = math.floor(start.timestamp() / SPAN_S) * SPAN_S
    while edge < end.timestamp():
        a = max(start, datetime.fromtimestamp(edge, UTC))
        b = min(end, datetime.fromtimestamp(edge + SPAN_S, UTC))
        if a < b:
            out.append((a, b))
        edge += SPAN_S
    return out[::-1]


def simulate(job: Job) -> tuple[bulkload.History, int]:
    """The history of one span as the ingest would have stored it, and how many readings faults lost."""
    # Every run of a span starts at its edge, so a time gets the same values whatever window asked for it.
    edge = math.floor(job.start.timestamp() / SPAN_S) * SPAN_S
    span = Span(edge, job.start.timestamp(), job.end.timestamp(), job.newest, job.faults)
    return history.simulate(job.fleet, job.seed, span)


async def _write(database_url: str, rows: bulkload.History) -> bool:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await init_connection(conn)
        await bulkload.write(conn, rows)
    except asyncpg.UniqueViolationError:
        return False  # someone stored readings in this span meanwhile: it is not history any more
    finally:
        await conn.close()
    return True


def fill(job: Job) -> tuple[int, int, int]:
    """Simulate and write one span (in a worker process): (rows, events, lost readings)."""
    rows, lost = simulate(job)
    if not asyncio.run(_write(job.database_url, rows)):
        logger.warning("backfill: %s..%s received readings meanwhile; left as it is", job.start, job.end)
        return 0, 0, 0
    return rows.rows, len(rows.events), lost


async def _unfilled(database_url: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return await bulkload.unfilled(conn, spans(start, end))
    finally:
        await conn.close()


def plan(
    settings: Settings,
    database_url: str,
    fleet: Fleet,
    days: float,
    *,
    seed: int = 0,
    faults: FaultSpec | None = None,
    now: datetime | None = None,
) -> list[Job]:
    """The spans of the ``days`` before ``now`` (default: the current time) that hold no readings yet, newest first."""
    end = now or datetime.now(UTC)
    if faults is None:
        faults = FaultSpec.parse(settings.sim_backfill_faults)
    todo = asyncio.run(_unfilled(database_url, end - timedelta(days=days), end))
    return [Job(database_url, fleet, seed, faults, a, b, b == end) for a, b in todo]


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent decides, and stops the workers with the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run(
    jobs: list[Job], workers: int = MAX_WORKERS, bar: Bar | None = None, stop: threading.Event | None = None
) -> Result:
    """Simulate and write ``jobs`` in up to ``workers`` processes until done or ``stop`` is set (the spans
    being written are then rolled back); returns what was written."""
    result = Result(
        min((j.start for j in jobs), default=datetime.now(UTC)), max((j.end for j in jobs), default=datetime.now(UTC))
    )
    if not jobs:
        return result
    started = time.monotonic()
    total_s = sum((j.end - j.start).total_seconds() for j in jobs)
    workers = max(1, min(workers, os.cpu_count() or 1, len(jobs)))
    # spawn: the caller (ioc up) may hold threads and connections that a fork would copy.
    with get_context("spawn").Pool(workers, initializer=_ignore_sigint) as pool:
        done = pool.imap_unordered(_fill_job, jobs)
        for _ in jobs:
            item = None
            while item is None and not (stop is not None and stop.is_set()):
                try:
                    item = done.next(timeout=0.2)
                except multiprocessing.TimeoutError:
                    continue
            if item is None:
                result.stopped = True
                break  # leaving the block terminates the workers: their open transactions roll back
            job, (rows, events, lost) = item
            result.spans += 1
            result.rows += rows
            result.events += events
            result.lost += lost
            result.stored_s += (job.end - job.start).total_seconds()
            if bar is not None:
                bar.update(
                    result.stored_s / total_s,
                    f"{result.stored_s / 86400:.1f} of {total_s / 86400:.1f} days, {result.rows:,} readings",
                )
    result.seconds = time.monotonic() - started
    logger.log(
        logging.DEBUG if result.stopped else logging.INFO,
        "backfill stopped" if result.stopped else "backfill done",
        extra={
            "start": result.start.isoformat(),
            "end": result.end.isoformat(),
            "spans": result.spans,
            "rows": result.rows,
            "events": result.events,
            "seconds": round(result.seconds, 1),
        },
    )
    return result


def _fill_job(job: Job) -> tuple[Job, tuple[int, int, int]]:
    return job, fill(job)


def backfill(
    settings: Settings,
    database_url: str,
    fleet: Fleet,
    days: float,
    *,
    seed: int = 0,
    faults: FaultSpec | None = None,
    now: datetime | None = None,
    bar: Bar | None = None,
) -> Result:
    """Fill the ``days`` before ``now`` where no readings are stored yet; blocks until done."""
    return run(plan(settings, database_url, fleet, days, seed=seed, faults=faults, now=now), bar=bar)


class Background:
    """The history of the first ``ioc up``, filled by a thread; ``stop`` ends it cleanly before the database."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._fill, name="backfill", daemon=True)

    def start(self) -> Background:
        """Start filling in the background."""
        self.thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the history; True when it has ended."""
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers (their spans roll back) and wait; says how far the history got."""
        if not self.thread.is_alive():
            return
        self.stopping.set()
        self.join(timeout)

    def _fill(self) -> None:
        horizon = max(j.end for j in self.jobs) - FIRST_WAIT
        first = [j for j in self.jobs if j.end > horizon]
        rest = [j for j in self.jobs if j.end <= horizon]
        total_s = sum((j.end - j.start).total_seconds() for j in self.jobs)
        stored_s = 0.0
        try:
            for part in (first, rest):
                if not part:
                    continue
                bar = Bar("history", in_place=False)
                result = run(part, bar=bar, stop=self.stopping)
                stored_s += result.stored_s
                if result.stopped:
                    logger.info(
                        "backfill stopped: %.1f of %.1f days of history stored; the next start fills the rest",
                        stored_s / 86400,
                        total_s / 86400,
                    )
                    return
                hours = sum((j.end - j.start).total_seconds() for j in part) / 3600
                what = f"the last {hours:.0f} h" if part is first else f"{hours / 24:.1f} older days"
                bar.finish(f"{what} stored ({result.rows:,} readings, {result.events:,} events)")
        except Exception as exc:  # noqa: BLE001 - the live centre runs on without its history
            logger.warning("backfill failed: %s; the next start fills what is missing", exc)


def backfill_if_empty(settings: Settings, database_url: str, seed: int | None) -> Background | None:
    """``ioc up`` with simulators: fill the last IOC_SIM_BACKFILL_DAYS days that hold no readings yet.

    Which spans to fill is decided now, before the live simulation starts (so the two never overlap);
    they are filled in the background, newest first (the last FIRST_WAIT, the wall's 24-hour charts and
    "vs yesterday", then the older days), while the centre runs. A progress bar and a line per part go to
    the console. A failure is reported and the centre runs without history; ``stop`` ends it quietly.
    """
    days = settings.sim_backfill_days
    if days <= 0:
        return None
    try:
        fleet = load_fleet(settings.fleet_file, load_kinds(settings.kinds_file))
        jobs = plan(settings, database_url, fleet, days, seed=seed or 0)
    except Exception as exc:  # noqa: BLE001 - the live centre must start whatever happened to its history
        logger.exception("backfill failed")
        print(f"ioc up: cannot fill the simulated history ({exc}); running without it", file=sys.stderr, flush=True)
        return None
    if not jobs:
        return None
    return Background(jobs).start()

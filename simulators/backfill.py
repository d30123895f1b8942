"""History for the simulated city: the days before "now" made by the live simulation's own models, stored.

`fleet -> Simulation(encode=False) per 6-hour span -> formats.stored_* (what the ingest keeps) -> ioc.bulkload`

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
from simulators import formats
from simulators.faults import FaultSpec
from simulators.progress import Bar
from simulators.runner import Simulation

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
    future_skew_s: float
    past_window_s: float


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
    edge = datetime.fromtimestamp(math.floor(job.start.timestamp() / SPAN_S) * SPAN_S, UTC)
    sim = Simulation(job.fleet, seed=job.seed, speed=1.0, start=edge, faults=job.faults, encode=False)
    specs = {d.device_id: d for d in job.fleet.devices}
    history = bulkload.History()
    heard: set[tuple[str, datetime]] = set()  # (device, time): the first message wins, as ON CONFLICT does
    lost = 0
    late = timedelta(seconds=job.future_skew_s)
    early = timedelta(seconds=job.past_window_s)
    for message in sim.advance(job.end):
        device_id, wall = message.device_id, message.wall_time
        inside = wall >= job.start  # sent within the stretch (the run starts at the span's edge)
        if message.action in ("drop", "connect"):
            if job.newest and inside:
                state = "offline" if message.action == "drop" else "online"
                history.status[device_id] = (wall, state, wall)
            continue
        spec = specs[device_id]
        if message.reading is not None:
            when, seq, values = formats.stored_reading(spec, message.reading)
            if not wall - early <= when <= wall + late or (device_id, when) in heard:
                lost += inside  # refused as out of its time window, or a second reading at that time
                continue
            heard.add((device_id, when))
            if not job.start <= when < job.end:
                continue  # before the stretch, or skewed past its end
            history.add(when, device_id, seq, values)
            if job.newest:
                for metric, part, value in values:
                    history.latest[(device_id, metric, part)] = (when, value)
                previous = history.status.get(device_id)
                since = previous[2] if previous is not None and previous[1] == "online" else wall
                history.status[device_id] = (wall, "online", since)
        elif message.event is not None:
            when, kind, severity, confidence, attrs = formats.stored_event(spec, message.event)
            if job.start <= when < job.end:
                history.events.append((when, device_id, kind, severity, confidence, attrs))
        elif message.fault is not None:
            lost += inside
    return history, lost


async def _write(database_url: str, history: bulkload.History) -> bool:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await init_connection(conn)
        await bulkload.write(conn, history)
    except asyncpg.UniqueViolationError:
        return False  # someone stored readings in this span meanwhile: it is not history any more
    finally:
        await conn.close()
    return True


def fill(job: Job) -> tuple[int, int, int]:
    """Simulate and write one span (in a worker process): (rows, events, lost readings)."""
    history, lost = simulate(job)
    if not asyncio.run(_write(job.database_url, history)):
        logger.warning("backfill: %s..%s received readings meanwhile; left as it is", job.start, job.end)
        return 0, 0, 0
    return len(history.measurements), len(history.events), lost


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
    return [
        Job(
            database_url,
            fleet,
            seed,
            faults,
            a,
            b,
            b == end,
            settings.ingest_future_skew_s,
            settings.ingest_past_window_s,
        )
        for a, b in todo
    ]


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent decides, and stops the workers with the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run(jobs: list[Job], workers: int = MAX_WORKERS, bar: Bar | None = None) -> Result:
    """Simulate and write ``jobs`` in up to ``workers`` processes; returns what was written."""
    result = Result(
        min((j.start for j in jobs), default=datetime.now(UTC)), max((j.end for j in jobs), default=datetime.now(UTC))
    )
    if not jobs:
        return result
    started = time.monotonic()
    total_s = sum((j.end - j.start).total_seconds() for j in jobs)
    done_s = 0.0
    workers = max(1, min(workers, os.cpu_count() or 1, len(jobs)))
    # spawn: the caller (ioc up) may hold threads and connections that a fork would copy.
    with get_context("spawn").Pool(workers, initializer=_ignore_sigint) as pool:
        for job, (rows, events, lost) in pool.imap_unordered(_fill_job, jobs):
            result.spans += 1
            result.rows += rows
            result.events += events
            result.lost += lost
            done_s += (job.end - job.start).total_seconds()
            if bar is not None:
                bar.update(
                    done_s / total_s, f"{done_s / 86400:.1f} of {total_s / 86400:.1f} days, {result.rows:,} readings"
                )
    result.seconds = time.monotonic() - started
    logger.info(
        "backfill done",
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


def backfill_if_empty(settings: Settings, database_url: str, seed: int | None) -> threading.Thread | None:
    """``ioc up`` with simulators: fill the last IOC_SIM_BACKFILL_DAYS days that hold no readings yet.

    Which spans to fill is decided now, before the live simulation starts (so the two never overlap);
    they are filled in the background, newest first, while the centre runs: the last FIRST_WAIT (the
    wall's 24-hour charts and "vs yesterday") with every worker, older days with one. A progress bar
    and a line per part go to the console. A failure is reported and the centre runs without history.
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
    thread = threading.Thread(target=_fill_in_background, args=(jobs,), name="backfill", daemon=True)
    thread.start()
    return thread


def _fill_in_background(jobs: list[Job]) -> None:
    """The history of ``backfill_if_empty`` (its worker pools end with the process at the latest)."""
    horizon = max(j.end for j in jobs) - FIRST_WAIT
    first = [j for j in jobs if j.end > horizon]
    rest = [j for j in jobs if j.end <= horizon]
    try:
        for part, workers in ((first, MAX_WORKERS), (rest, 1)):
            if not part:
                continue
            bar = Bar("history", in_place=False)
            result = run(part, workers=workers, bar=bar)
            hours = sum((j.end - j.start).total_seconds() for j in part) / 3600
            what = f"the last {hours:.0f} h" if part is first else f"{hours / 24:.1f} older days"
            bar.finish(f"{what} stored ({result.rows:,} readings, {result.events:,} events)")
    except Exception as exc:  # noqa: BLE001 - e.g. the database stopped under it at Ctrl-C
        logger.warning("backfill stopped: %s", exc)

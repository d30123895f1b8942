"""Simulated history: stored exactly as the ingest stores live data, read by the real API, quiet for alerts.

The real-stack tests fill about a day (FILLED_DAYS) into a database of their own, on the session's
PostgreSQL+TimescaleDB, then read it through a real ``ioc serve``.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from dashboards.alerts.engine import AlertEngine
from dashboards.alerts.observe import observe
from dashboards.alerts.rules import RuleBook
from ioc.db import create_pool, init_connection, migrate
from ioc.fleet import Fleet, load_fleet
from ioc.grants import ROLES
from ioc.processes import free_port
from ioc.registry import import_fleet
from ioc.settings import REPO_ROOT, Settings
from ioc.up import Stack, wait_http
from simulators.backfill import SPAN_S, Job, backfill, backfill_if_empty, simulate, spans
from simulators.faults import FaultSpec
from tests.support.auth import create_people, signed_in

FILLED_DAYS = 1.1  # the readings' 24 hours plus "the same time yesterday", kept short for the suite
NOW = datetime.now(UTC)
SEED = 3


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")


# ---------------------------------------------------------------- pure: the simulator's side


def test_a_time_gets_the_same_history_whatever_window_asked_for_it(fleet: Fleet) -> None:
    edge = datetime(2025, 10, 21, 6, tzinfo=UTC)
    faults = FaultSpec.parse("clock_skew=0.05,drop=0.01")
    whole = Job("", fleet, 2, faults, edge, edge + timedelta(hours=6), False)
    part = replace(whole, start=edge + timedelta(hours=2, minutes=17, seconds=5))
    rows_whole, _ = simulate(whole)
    rows_part, _ = simulate(part)
    assert rows_part.rows
    assert list(rows_part.readings()) == [r for r in rows_whole.readings() if r[1] >= part.start.timestamp()]
    assert rows_part.events == [e for e in rows_whole.events if e[0] >= part.start]


def test_spans_have_fixed_edges_newest_first() -> None:
    start = datetime(2026, 11, 25, 14, 10, 5, tzinfo=UTC)
    end = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    cut = spans(start, end)
    assert cut[0] == (datetime(2026, 11, 26, 0, tzinfo=UTC), end)
    assert cut[-1] == (start, datetime(2026, 11, 25, 18, tzinfo=UTC))
    assert all(a.timestamp() % SPAN_S == 0 for a, _ in cut[:-1]) and all(b > a for a, b in cut)
    assert [b for _, b in cut[1:]] == [a for a, _ in cut[:-1]]


def test_faults_leave_gaps_but_never_two_rows_for_one_key(fleet: Fleet) -> None:
    start = datetime(2025, 10, 21, 6, tzinfo=UTC)
    faults = FaultSpec.parse("drop=0.01,clock_skew=0.02,malformed=0.01")
    job = Job("", fleet, 1, faults, start, start + timedelta(hours=6), True)
    clean, none_lost = simulate(replace(job, faults=FaultSpec()))
    faulty, lost = simulate(job)
    assert none_lost == 0 and lost > 100
    assert faulty.rows < clean.rows - lost
    keys = [(key, t) for key, t, _ in faulty.readings()]
    assert len(keys) == len(set(keys)) == faulty.rows
    assert all(start.timestamp() <= t < job.end.timestamp() for _, t in keys)
    assert {"online"} == {s for _, s in clean.status.values()}
    # One rollup per reading (one reading a minute), each counting it once.
    assert faulty.rollup_rows == faulty.rows


# ---------------------------------------------------------------- the real stack


@contextmanager
def fresh_database(stack: Stack, fleet: Fleet) -> Iterator[str]:
    """A database of its own on the session's cluster, migrated, with the demo fleet; dropped afterwards.

    Only the superuser may create databases (the application's roles may not), so it does, for the owner role.
    """
    name = f"ioc_history_{uuid.uuid4().hex[:8]}"
    assert stack.postgres is not None
    superuser = f"postgresql://postgres:{stack.postgres.password('postgres')}@127.0.0.1:{stack.postgres.port}/postgres"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(superuser)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def load(url: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await init_connection(conn)
            await import_fleet(conn, fleet)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name} OWNER {ROLES['owner']}"))
    try:
        url = urlunsplit(urlsplit(stack.database_url)._replace(path=f"/{name}"))
        migrate(url)
        asyncio.run(load(url))
        yield url
    finally:
        asyncio.run(admin(f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture(scope="module")
def history_url(stack: Stack, fleet: Fleet) -> Iterator[str]:
    """The module's history database."""
    with fresh_database(stack, fleet) as url:
        yield url


@pytest.fixture(scope="module")
def filled(history_url: str, fleet: Fleet) -> object:
    """FILLED_DAYS of history before NOW, without device faults (a chart of it has no gap)."""
    result = backfill(
        Settings(environment="test"), history_url, fleet, FILLED_DAYS, seed=SEED, faults=FaultSpec(), now=NOW
    )
    assert result.spans >= 5 and result.rows > 500_000 and result.events > 20
    return result


@pytest.fixture(scope="module")
async def hpool(history_url: str, filled: object) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(history_url, max_size=3)
    yield p
    await p.close()


@pytest.fixture(scope="module")
def api(run_ioc, history_url: str, filled: object) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real ``ioc serve`` on the history database, started once the history is stored."""
    port = free_port()
    child = run_ioc("serve-history", "serve", "--port", str(port), env={"IOC_DATABASE_URL": history_url})
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/v1/health", 30, child)
    yield base
    child.stop()


@pytest.fixture(scope="module")
async def admin_name(hpool: asyncpg.Pool) -> str:
    return (await create_people(hpool, "hist"))["admin"]


async def test_readings_fill_the_last_24_hours_minute_by_minute(api: str, admin_name: str, fleet: Fleet) -> None:
    flood = next(d for d in fleet.devices if d.kind == "flood" and d.format == "legacy_flood")
    lanes = next(d for d in fleet.devices if d.format == "trafficx")
    end = NOW.replace(second=0, microsecond=0)
    window = {"from": (end - timedelta(hours=24)).isoformat(), "to": end.isoformat(), "bucket": "1m"}
    async with signed_in(api, admin_name) as client:
        for device, metric, part in ((flood, "water_level_cm", ""), (lanes, "avg_speed_kmh", "lane:1")):
            params = {**window, "metric": metric, "part": part}
            resp = await client.get(f"/api/v1/devices/{device.device_id}/readings", params=params)
            assert resp.status_code == 200, resp.text
            points = resp.json()["points"]
            assert len(points) == 24 * 60, (device.device_id, len(points))
            assert all(p["count"] == 1 and p["avg"] is not None for p in points)


async def test_the_summary_compares_with_yesterday(api: str, admin_name: str) -> None:
    async with signed_in(api, admin_name) as client:
        yesterday = (await client.get("/api/v1/summary")).json()["yesterday"]
    for figure in ("max_level_cm", "mean_speed_kmh", "flow_veh_h"):
        assert isinstance(yesterday[figure], int | float), yesterday


async def test_history_is_stored_as_the_ingest_leaves_it(hpool: asyncpg.Pool) -> None:
    start = NOW - timedelta(days=FILLED_DAYS)
    # Rollups are what ingest.rollups.refresh computes from the raw rows, and nothing waits to be recomputed.
    differ = await hpool.fetchval(
        """
        WITH raw AS (
          SELECT date_trunc('minute', time) AS bucket, device_id, metric, part,
                 count(*)::int AS count, sum(value) AS sum, min(value) AS min, max(value) AS max
          FROM measurements WHERE time >= $1 AND time < $2 GROUP BY 1, 2, 3, 4)
        SELECT (SELECT count(*) FROM (SELECT * FROM raw EXCEPT SELECT bucket, device_id, metric, part, count,
                                              sum, min, max FROM rollups_1m) a)
             + (SELECT count(*) FROM (SELECT bucket, device_id, metric, part, count, sum, min, max
                                      FROM rollups_1m EXCEPT SELECT * FROM raw) b)
        """,
        start,
        NOW,
    )
    assert differ == 0
    assert await hpool.fetchval("SELECT count(*) FROM rollup_dirty") == 0
    # Latest values are the newest reading of every key; every device was heard at the end of the history.
    stale = await hpool.fetchval(
        """
        SELECT count(*) FROM latest_values l
        WHERE l.time <> (SELECT max(time) FROM measurements m
                         WHERE m.device_id = l.device_id AND m.metric = l.metric AND m.part = l.part)
        """
    )
    assert stale == 0 and await hpool.fetchval("SELECT count(*) FROM latest_values") > 400
    # (The server's alert leader marks them stale a few minutes later: nothing publishes after the history.)
    heard = await hpool.fetchval(
        "SELECT count(*) FROM devices WHERE status IN ('online', 'stale') AND last_seen >= $1",
        NOW - timedelta(minutes=2),
    )
    # Every device of the demo has a history model.
    assert heard == await hpool.fetchval("SELECT count(*) FROM devices") > 100


async def test_history_opens_no_alerts(hpool: asyncpg.Pool, history_url: str) -> None:
    rules = RuleBook(Settings(environment="test").alert_rules_file)
    rules.refresh()
    incident = next(r for r in rules.current.rules if r.id == "camera_incident")
    window = timedelta(seconds=incident.window_s)
    old = await hpool.fetchval(
        "SELECT count(*) FROM events WHERE time < $1 AND type = ANY($2::text[]) AND confidence >= $3",
        NOW - window,
        list(incident.event_types),
        incident.min_confidence,
    )
    assert old >= 5, "the history holds incidents that would alert if they were current"
    engine = AlertEngine(hpool, history_url, Settings(environment="test"))
    for _ in range(2):
        await engine.evaluate()
    # Only what is happening now may alert (the server's own engine runs too): an incident inside the rule's
    # window when the alert opened; otherwise what the rules observe at present (water rising now, a
    # reading past a threshold now, a device silent since the history ended, as nothing publishes here).
    late = await hpool.fetchval(
        """
        SELECT count(*) FROM alerts a WHERE a.rule = $1 AND NOT EXISTS (
          SELECT 1 FROM events e WHERE e.device_id = a.device_id AND e.time > a.opened_at - $2::interval
            AND e.time <= a.opened_at AND e.type = ANY($3::text[]))
        """,
        incident.id,
        window,
        list(incident.event_types),
    )
    assert late == 0
    others = await hpool.fetch("SELECT rule, device_id, state FROM alerts WHERE rule <> $1", incident.id)
    present: dict[str, set[str]] = {}
    async with hpool.acquire() as conn:
        for rule in rules.current.rules:
            active = {a["device_id"]: "warning" for a in others if a["rule"] == rule.id}
            present[rule.id] = {d for d, o in (await observe(conn, rule, active)).items() if o.level is not None}
    assert all(a["state"] != "resolved" and a["device_id"] in present[a["rule"]] for a in others), others


async def test_a_second_run_adds_nothing_and_a_later_one_fills_only_the_gap(
    hpool: asyncpg.Pool, history_url: str, fleet: Fleet
) -> None:
    before = await hpool.fetchval("SELECT count(*) FROM measurements")
    settings = Settings(environment="test")
    again = await asyncio.to_thread(
        backfill, settings, history_url, fleet, FILLED_DAYS, seed=SEED, faults=FaultSpec(), now=NOW
    )
    assert again.spans == 0 and await hpool.fetchval("SELECT count(*) FROM measurements") == before
    later_now = NOW + timedelta(minutes=5)
    later = await asyncio.to_thread(
        backfill, settings, history_url, fleet, FILLED_DAYS, seed=SEED, faults=FaultSpec(), now=later_now
    )
    assert later.spans == 1 and 0 < later.rows < 6 * 600
    assert await hpool.fetchval("SELECT count(*) FROM measurements WHERE time >= $1", NOW) == later.rows


async def test_simulate_backfill_adds_older_days(
    history_url: str, app_env: dict[str, str], hpool: asyncpg.Pool
) -> None:
    oldest = await hpool.fetchval("SELECT min(time) FROM measurements")
    env = {**app_env, "IOC_DATABASE_URL": history_url}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ioc.cli", "simulate", "--backfill", f"{FILLED_DAYS + 0.1:.2f}", "--seed", str(SEED)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "history:" in proc.stderr and "readings" in proc.stderr, proc.stderr
    older = await hpool.fetchval("SELECT min(time) FROM measurements")
    assert oldest - timedelta(hours=2.5) < older < oldest - timedelta(hours=2)


def test_ioc_up_fills_an_empty_database_in_the_background_once(stack: Stack, fleet: Fleet) -> None:
    with fresh_database(stack, fleet) as url:
        assert backfill_if_empty(Settings(environment="test", sim_backfill_days=0), url, SEED) is None
        settings = Settings(environment="test", sim_backfill_days=0.05)  # 72 minutes: one or two spans
        started = datetime.now(UTC)
        history = backfill_if_empty(settings, url, SEED)
        assert history is not None
        assert history.join(120)

        async def stored() -> tuple[int, datetime, datetime]:
            conn = await asyncpg.connect(url)
            try:
                row = await conn.fetchrow("SELECT count(*) AS n, min(time) AS a, max(time) AS b FROM measurements")
                return row["n"], row["a"], row["b"]
            finally:
                await conn.close()

        count, oldest, newest = asyncio.run(stored())
        assert oldest < started - timedelta(minutes=70) and newest > started - timedelta(minutes=1)
        assert count > 70 * 400
        # A second start adds nothing to what is stored (only the minutes since, if a minute has passed).
        again = backfill_if_empty(settings, url, SEED)
        if again is not None:
            assert again.join(120)

        async def up_to_before() -> int:
            conn = await asyncpg.connect(url)
            try:
                return await conn.fetchval("SELECT count(*) FROM measurements WHERE time <= $1", newest)
            finally:
                await conn.close()

        assert asyncio.run(up_to_before()) == count


def test_a_stopped_backfill_says_how_far_it_got_and_the_next_start_fills_the_rest(
    stack: Stack, fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C during `ioc up`: the workers end, their open spans roll back, one INFO line; nothing is lost."""
    days = 1.5

    async def stored(url: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(
                "SELECT to_timestamp(floor(extract(epoch FROM time) / $1) * $1) AS edge, min(time) AS a, "
                "max(time) AS b, count(*) AS n FROM measurements GROUP BY 1 ORDER BY 1",
                SPAN_S,
            )
        finally:
            await conn.close()

    with fresh_database(stack, fleet) as url:
        caplog.set_level(logging.INFO, logger="simulators.backfill")
        settings = Settings(environment="test", sim_backfill_days=days)
        history = backfill_if_empty(settings, url, SEED)
        assert history is not None
        deadline = time.monotonic() + 120
        while not asyncio.run(stored(url)):
            assert time.monotonic() < deadline and history.thread.is_alive()
            time.sleep(0.05)
        history.stop()
        assert not history.thread.is_alive()
        spans_stored = asyncio.run(stored(url))
        assert len(spans_stored) < days * 4
        # Whole spans only: each begins within a minute of its edge (the oldest at the window's start).
        assert all(s["a"] - s["edge"] < timedelta(minutes=1) for s in spans_stored[1:])
        ours = [r for r in caplog.records if r.name == "simulators.backfill"]
        assert [r.levelname for r in ours if r.levelno >= logging.WARNING] == []
        said = [r.getMessage() for r in ours if r.getMessage().startswith("backfill stopped: ")]
        assert len(said) == 1 and f"of {days:.1f} days of history stored" in said[0], said
        again = backfill_if_empty(settings, url, SEED)
        assert again is not None and again.join(120)
        full = asyncio.run(stored(url))
        assert full[0]["a"] < datetime.now(UTC) - timedelta(days=days) + timedelta(minutes=2)
        assert all(s["a"] - s["edge"] < timedelta(minutes=1) for s in full[1:])
        assert all(s["b"] - s["edge"] > timedelta(seconds=SPAN_S - 60) for s in full[:-1])

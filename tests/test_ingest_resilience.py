"""Nothing lost, nothing doubled: a worker killed with SIGKILL, a 30 s database outage, two workers sharing
one subscription. Each runs `ioc simulate --load` and compares the database with its manifest."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from ioc.processes import Child, spawn
from ioc.up import Stack
from tests.support.stack import log_tail, own_stack, start_worker, wait_for

DEVICES = 100


@pytest.fixture(scope="module")
def private_stack(module_scratch_dir: Callable[[str], Path]) -> Iterator[Stack]:
    """A database and broker of our own: these tests stop the database and kill workers."""
    with own_stack(module_scratch_dir("ioc-resilience-"), DEVICES) as stack:
        yield stack


def start(stack: Stack, name: str, *args: str) -> Child:
    env = {**stack.child_env(args[0]), "IOC_INGEST_METRICS_PORT": "0"}
    return spawn(name, [sys.executable, "-m", "ioc.cli", *args], stack.state_dir / "logs" / f"{name}.log", env=env)


def worker(stack: Stack, client_id: str) -> Child:
    return start_worker(stack, client_id, {"IOC_INGEST_RATE_LIMIT_PER_S": "1000"}, timeout=30)


def load(stack: Stack, rate: int, seconds: int, manifest: Path) -> Child:
    return start(
        stack,
        "load",
        "simulate",
        "--load",
        str(rate),
        "--devices",
        str(DEVICES),
        "--duration",
        str(seconds),
        "--manifest",
        str(manifest),
    )


async def assert_matches_manifest(stack: Stack, manifest_path: Path, timeout: float = 60) -> dict[str, int]:
    """Wait until the database holds exactly what the manifest says was acknowledged, per device."""
    manifest = json.loads(manifest_path.read_text())
    assert manifest["acked"] == manifest["sent"] > 0
    expected = {dev: d["count"] for dev, d in manifest["devices"].items()}
    conn = await asyncpg.connect(stack.database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = await conn.fetch(
                "SELECT device_id, count(*) AS n, count(DISTINCT time) AS t, max(seq) AS last FROM measurements "
                "WHERE metric = 'water_level_cm' GROUP BY device_id"
            )
            got = {r["device_id"]: r["n"] for r in rows}
            if got == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert sum(got.values()) == sum(expected.values()), "rows stored vs messages acknowledged by the broker"
        assert got == expected
        for r in rows:
            assert r["t"] == r["n"], f"duplicate readings for {r['device_id']}"
            assert r["last"] == manifest["devices"][r["device_id"]]["last_seq"]
        total_rows = await conn.fetchval("SELECT count(*) FROM measurements")
        assert total_rows == 3 * manifest["sent"]  # 3 metrics per message, none twice
        return got
    finally:
        await conn.close()


@pytest.fixture()
def clean(private_stack: Stack) -> Stack:
    assert private_stack.postgres is not None
    private_stack.postgres.psql("TRUNCATE measurements, latest_values, rollup_dirty, quarantine")
    return private_stack


async def test_sigkill_mid_stream_loses_and_doubles_nothing(clean: Stack, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    first = worker(clean, "kill-me")
    sender = load(clean, 1500, 12, manifest)
    await asyncio.sleep(4)  # the scenario: the kill lands mid-stream, 4 s into the load
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(5)
    await asyncio.sleep(2)  # the scenario: the load goes on for 2 s with no worker (the broker queues it)
    second = worker(clean, "kill-me")  # same client id: the broker resumes the persistent session
    try:
        assert sender.proc.wait(60) == 0, log_tail(sender)
        await assert_matches_manifest(clean, manifest)
    finally:
        second.stop()
        sender.stop()


async def test_thirty_second_database_outage_is_spooled_and_replayed(clean: Stack, tmp_path: Path) -> None:
    assert clean.postgres is not None
    manifest = tmp_path / "manifest.json"
    w = worker(clean, "outage")
    sender = load(clean, 1000, 42, manifest)
    try:
        await asyncio.sleep(5)  # the scenario: 5 s of load, then a 30 s database outage under load
        clean.postgres.stop()
        await asyncio.sleep(30)
        clean.postgres.start(clean.state_dir / "logs" / "postgres.log")
        assert sender.proc.wait(60) == 0, log_tail(sender)
        await assert_matches_manifest(clean, manifest, timeout=90)

        def stats() -> dict[str, int]:
            return json.loads(clean.postgres.psql("SELECT stats FROM ingest_workers WHERE worker_id = 'outage'"))

        # The heartbeats (every 5 s) carry the counts: wait for one after the last replay.
        counts = wait_for(
            lambda: (s := stats())["spooled"] and s["replayed"] >= s["spooled"] and s, 20, 0.5, "the replay counted"
        )
        assert counts["spooled"] > 10_000
        assert w.proc.poll() is None, "the worker kept running through the outage"
    finally:
        w.stop()
        sender.stop()


async def test_two_workers_share_the_stream_each_message_stored_once(clean: Stack, tmp_path: Path) -> None:
    assert clean.postgres is not None
    manifest = tmp_path / "manifest.json"
    a, b = worker(clean, "share-a"), worker(clean, "share-b")
    sender = load(clean, 2000, 8, manifest)
    try:
        assert sender.proc.wait(60) == 0, log_tail(sender)
        await assert_matches_manifest(clean, manifest)
        sent = json.loads(manifest.read_text())["sent"]

        def stored() -> dict[str, int]:
            rows = clean.postgres.psql("SELECT worker_id, stats FROM ingest_workers WHERE worker_id LIKE 'share-%'")
            return {r.split("|")[0]: json.loads(r.split("|")[1])["stored"] for r in rows.splitlines()}

        # The heartbeats (every 5 s) carry the counts: wait for the ones after the last commit.
        wait_for(lambda: sum(stored().values()) == 3 * sent, 20, 0.5, f"heartbeats counting {3 * sent} rows")
        assert all(n > 0 for n in stored().values()), f"both workers took part: {stored()}"
    finally:
        a.stop()
        b.stop()
        sender.stop()


async def test_worker_rides_out_a_broker_restart(clean: Stack, tmp_path: Path) -> None:
    """The broker restarts (persistent sessions on disk): the worker reconnects by itself and goes on storing."""
    assert clean.postgres is not None and clean.mosquitto is not None
    w = worker(clean, "broker-restart")
    try:
        before = tmp_path / "before.json"
        assert load(clean, 1000, 3, before).proc.wait(60) == 0
        await assert_matches_manifest(clean, before)

        clean.mosquitto.stop()
        await asyncio.sleep(3)  # the scenario: the broker stays away for 3 s
        assert w.proc.poll() is None, "the worker survived the broker's absence"
        clean.mosquitto.start(clean.state_dir / "logs" / "mosquitto-restarted.log")
        clean.postgres.psql("TRUNCATE measurements, latest_values, rollup_dirty")

        after = tmp_path / "after.json"
        sender = load(clean, 1000, 3, after)
        assert sender.proc.wait(60) == 0, log_tail(sender)
        await assert_matches_manifest(clean, after)
        assert (
            "connected to the broker"
            in (clean.state_dir / "logs" / "broker-restart.log").read_text().split("disconnected from the broker")[-1]
        ), "a reconnect is logged after the disconnect"
    finally:
        w.stop()

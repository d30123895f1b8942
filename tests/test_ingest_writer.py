"""The writer on the real database: its throttles, and what a failed commit leaves behind (issue 12.8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ingest.connections import DB_DOWN
from ingest.writer import DEVICE_WRITE_EVERY_S, LATEST_EVERY_S, Batch, Throttles, Writer
from ioc.db import init_connection
from ioc.records import Event, Measurement

Connect = Callable[[], Awaitable[asyncpg.Connection]]


@pytest.fixture
async def connect(database_url: str) -> AsyncIterator[Connect]:
    """Open writer connections (as the ingest does); all are closed after the test."""
    opened: list[asyncpg.Connection] = []

    async def open_one() -> asyncpg.Connection:
        conn = await asyncpg.connect(database_url)
        await init_connection(conn)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        if not conn.is_closed():
            await conn.close()


async def writer_on(connect: Connect, throttles: Throttles) -> Writer:
    writer = Writer(await connect(), "writer-test", throttles)
    await writer.prepare()
    return writer


def level(device: str, value: float, at: datetime) -> Batch:
    """A batch holding one water level reading."""
    batch = Batch()
    batch.add([Measurement(at, device, "water_level_cm", value)], at, "flood")
    return batch


async def latest(pool: asyncpg.Pool, device: str) -> float | None:
    return await pool.fetchval(
        "SELECT value FROM latest_values WHERE device_id = $1 AND metric = 'water_level_cm'", device
    )


async def test_latest_values_are_throttled_per_key_and_flushed(connect: Connect, pool: asyncpg.Pool) -> None:
    """The first value of a key is written at once; a newer one within LATEST_EVERY_S waits and is then written
    by an empty batch (the writer's timer), never lost."""
    device = "T-WR-throttle"
    writer = await writer_on(connect, Throttles())
    now = datetime.now(UTC)
    await writer.write(level(device, 1.0, now))
    assert await latest(pool, device) == 1.0
    await writer.write(level(device, 2.0, now + timedelta(seconds=1)))
    assert await latest(pool, device) == 1.0 and writer.latest_pending  # held back by the throttle
    assert (await pool.fetchval("SELECT count(*) FROM measurements WHERE device_id = $1", device)) == 2  # rows: all
    deadline = time.monotonic() + 5 * LATEST_EVERY_S + 5
    while await latest(pool, device) != 2.0:
        assert time.monotonic() < deadline, "the held latest value was never written"
        await asyncio.sleep(LATEST_EVERY_S / 5)
        await writer.write(Batch())
    assert not writer.latest_pending


async def test_device_last_seen_is_throttled_but_status_changes_are_not(connect: Connect, pool: asyncpg.Pool) -> None:
    device = "T-WR-seen"
    await pool.execute(
        "INSERT INTO devices (device_id, kind, format, name) VALUES ($1, 'flood', 'canonical', $1) "
        "ON CONFLICT (device_id) DO NOTHING",
        device,
    )
    writer = await writer_on(connect, Throttles())
    t0 = datetime.now(UTC)
    await writer.write(level(device, 1.0, t0))
    assert await pool.fetchval("SELECT last_seen FROM devices WHERE device_id = $1", device) == t0
    await writer.write(level(device, 1.0, t0 + timedelta(seconds=1)))  # within DEVICE_WRITE_EVERY_S: not written
    assert await pool.fetchval("SELECT last_seen FROM devices WHERE device_id = $1", device) == t0
    assert DEVICE_WRITE_EVERY_S > 1
    offline = Batch()
    offline.seen[device] = (t0 + timedelta(seconds=2), "offline")
    offline.announced.add(device)
    await writer.write(offline)  # an explicit status always goes through
    assert await pool.fetchval("SELECT status FROM devices WHERE device_id = $1", device) == "offline"


async def test_a_commit_the_database_refuses_keeps_the_latest_value(connect: Connect, pool: asyncpg.Pool) -> None:
    """Issue 12.8: the transaction fails (an event jsonb refuses); the latest value it carried is written
    by the next batch, not forgotten until the metric reports again."""
    device = "T-WR-refused"
    writer = await writer_on(connect, Throttles())
    now = datetime.now(UTC)
    batch = level(device, 7.5, now)
    batch.events.append(Event(now, device, "traffic.accident", "high", 1.0, {"note": "a\x00b"}))
    with pytest.raises(asyncpg.PostgresError):
        await writer.write(batch)
    assert await latest(pool, device) is None  # rolled back
    assert writer.latest_pending
    await writer.write(Batch())  # the next (empty) batch: due at once, as before the failed commit
    assert await latest(pool, device) == 7.5


async def test_a_commit_lost_with_its_connection_keeps_the_latest_value(connect: Connect, pool: asyncpg.Pool) -> None:
    """The connection dies under the writer (as in a database restart): another writer sharing the
    throttles writes the value the failed batch carried."""
    device = "T-WR-lost"
    throttles = Throttles()
    writer = await writer_on(connect, throttles)
    await pool.execute("SELECT pg_terminate_backend($1)", writer.conn.get_server_pid())
    with pytest.raises(DB_DOWN):  # what the service treats as a database outage (it spools the batch)
        await writer.write(level(device, 3.25, datetime.now(UTC)))
    assert await latest(pool, device) is None
    again = await writer_on(connect, throttles)
    await again.write(Batch())
    assert await latest(pool, device) == 3.25


async def test_a_failed_commit_does_not_undo_a_newer_value(connect: Connect, pool: asyncpg.Pool) -> None:
    """While a failed batch is given back, a newer reading of the same key queued meanwhile wins."""
    device = "T-WR-newer"
    throttles = Throttles()
    writer = await writer_on(connect, throttles)
    now = datetime.now(UTC)
    bad = level(device, 1.0, now)
    bad.events.append(Event(now, device, "traffic.accident", "high", 1.0, {"note": "a\x00b"}))
    with pytest.raises(asyncpg.PostgresError):
        await writer.write(bad)
    other = await writer_on(connect, throttles)
    await other.write(level(device, 2.0, now + timedelta(seconds=1)))
    assert await latest(pool, device) == 2.0
    assert not throttles.latest_pending and len(throttles.latest_due) == 0

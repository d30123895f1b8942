"""The embedded stack that `ioc up` and the fixtures share: TimescaleDB, schema, broker."""

from __future__ import annotations

import asyncpg

from ioc.db import timescaledb_version
from ioc.stack import EmbeddedMosquitto, port_free


async def test_database_has_timescaledb_and_hypertables(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert (await timescaledb_version(conn) or "").startswith("2.")
        hypertables = {
            r["hypertable_name"]
            for r in await conn.fetch("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
    assert hypertables == {"measurements", "events", "rollups_1m"}


async def test_schema_has_the_foundation_tables(pool: asyncpg.Pool) -> None:
    tables = {r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {
        "devices",
        "zones",
        "measurements",
        "events",
        "quarantine",
        "latest_values",
        "rollups_1m",
        "snapshots",
        "alembic_version",
    } <= tables


def test_broker_config_is_the_repository_file_with_private_paths(stack) -> None:  # type: ignore[no-untyped-def]
    mq: EmbeddedMosquitto = stack.mosquitto
    conf = mq.conf_path.read_text()
    assert f"listener {mq.port} 127.0.0.1" in conf
    assert "max_inflight_messages 10000" in conf  # from the repository's mosquitto.conf
    assert "persistence_location /mosquitto/data/" not in conf
    assert f"persistence_location {mq.root / 'data'}/" in conf
    assert not port_free(mq.port)


async def test_migrations_degrade_on_plain_postgresql(scratch_dir) -> None:  # type: ignore[no-untyped-def]
    """Without TimescaleDB loaded the schema is still created, with plain tables and time indexes."""
    from ioc.db import create_pool, migrate
    from ioc.stack import EmbeddedPostgres, free_port

    root = scratch_dir("ioc-plain-")
    pg = EmbeddedPostgres(root / "pg", free_port(), fast=True, timescaledb=False)
    pg.initdb()
    pg.start()
    try:
        migrate(pg.url)
        pool = await create_pool(pg.url, max_size=1)
        try:
            assert await pool.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 0
            indexes = {r["indexname"] for r in await pool.fetch("SELECT indexname FROM pg_indexes")}
            assert {"measurements_time_idx", "events_time_idx", "rollups_1m_bucket_idx"} <= indexes
            await pool.execute("INSERT INTO measurements (time, device_id, metric, value) VALUES (now(), 'P', 'm', 1)")
            assert await pool.fetchval("SELECT count(*) FROM measurements") == 1
        finally:
            await pool.close()
    finally:
        pg.stop()

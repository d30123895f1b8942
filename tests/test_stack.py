"""The embedded stack that `ioc up` and the fixtures share: TimescaleDB, schema, broker, who may connect."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess

import asyncpg
import pytest

from ioc.broker import EmbeddedMosquitto
from ioc.db import timescaledb_version
from ioc.grants import ROLES
from ioc.processes import port_free


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
    from ioc.cluster import EmbeddedPostgres
    from ioc.db import create_pool, migrate
    from ioc.processes import free_port

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


def _as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", "psql", "-w", "-d", "ioc", "-c", "SELECT 1", *args],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": os.environ["PATH"]},
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another local user (CI runs as root)")
def test_no_other_local_user_gets_into_the_database(stack) -> None:  # type: ignore[no-untyped-def]
    pg = stack.postgres
    run_dir = pg.socket_dir.stat()
    assert stat.S_IMODE(run_dir.st_mode) == 0o700 and run_dir.st_uid == pwd.getpwnam("postgres").pw_uid
    for user in ("postgres", "ioc_owner", "ioc_serve"):
        over_socket = _as_nobody("-h", str(pg.socket_dir), "-p", str(pg.port), "-U", user)
        assert over_socket.returncode != 0 and "Permission denied" in over_socket.stderr, over_socket
        over_tcp = _as_nobody("-h", "127.0.0.1", "-p", str(pg.port), "-U", user)
        assert over_tcp.returncode != 0 and "no password supplied" in over_tcp.stderr, over_tcp
    rules = [ln.split() for ln in (pg.data_dir / "pg_hba.conf").read_text().splitlines() if ln.strip()[:1] not in "#"]
    assert rules and {rule[-1] for rule in rules} == {"scram-sha-256"}, rules


async def test_no_role_of_the_application_is_privileged(stack) -> None:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
            "pg_has_role(rolname, 'pg_execute_server_program', 'USAGE') AS program "
            "FROM pg_roles WHERE rolname = ANY($1::text[])",
            list(ROLES.values()),
        )
    finally:
        await conn.close()
    assert len(rows) == len(ROLES)
    for row in rows:
        assert not any(row[k] for k in ("rolsuper", "rolcreaterole", "rolcreatedb", "rolbypassrls", "program")), row


# What each runtime role must be able to do, and things outside its grants it must be refused.
ALLOWED = {
    "ingest": [
        "INSERT INTO measurements (time, device_id, metric, value) VALUES (now(), 'role-test', 'm', 1)",
        "INSERT INTO quarantine (topic, payload, reason) VALUES ('t', '\\x00', 'test')",
        "UPDATE devices SET last_seen = now() WHERE device_id = 'role-test'",
        "CREATE TEMP TABLE staging (x int)",
        "SELECT ioc_apply_retention(30, 1825)",
    ],
    "serve": [
        "INSERT INTO audit_log (actor, action, outcome) VALUES ('role-test', 'test', 'ok')",
        "UPDATE devices SET status = 'stale' WHERE device_id = 'role-test'",
        "SELECT count(*) FROM measurements JOIN latest_values USING (device_id)",
        "DELETE FROM sessions WHERE user_name = 'role-test'",
    ],
    "read": ["SELECT count(*) FROM measurements", "SELECT count(*) FROM alerts JOIN devices USING (device_id)"],
}
REFUSED = {
    "ingest": [
        "DROP TABLE measurements",
        "TRUNCATE measurements",
        "DELETE FROM measurements",
        "SELECT * FROM users",
        "INSERT INTO users (name, role, password_hash) VALUES ('role-test', 'admin', 'x')",
        "UPDATE alerts SET state = 'resolved'",
        "SELECT drop_chunks('measurements', older_than => now())",
        "CREATE TABLE public.role_test (x int)",
        "COPY (SELECT 1) TO PROGRAM 'id'",
    ],
    "serve": [
        "DROP TABLE users",
        "INSERT INTO measurements (time, device_id, metric, value) VALUES (now(), 'role-test', 'm', 1)",
        "UPDATE measurements SET value = 0",
        "DELETE FROM alerts",
        "DELETE FROM devices",
        "TRUNCATE audit_log",
        "ALTER TABLE users ADD COLUMN role_test int",
        "SELECT ioc_apply_retention(30, 1825)",
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "CREATE ROLE role_test SUPERUSER",
    ],
    "read": [
        "SELECT * FROM users",
        "SELECT * FROM sessions",
        "SELECT * FROM mqtt_accounts",
        "SELECT * FROM audit_log",
        "INSERT INTO zones (zone_id, name, lat, lon) VALUES ('role-test', 'x', 0, 0)",
        "UPDATE devices SET name = 'x'",
        "DROP TABLE zones",
        "COPY (SELECT 1) TO PROGRAM 'id'",
    ],
}


@pytest.mark.parametrize("purpose", sorted(ALLOWED))
async def test_each_runtime_role_does_its_work_and_nothing_else(stack, purpose: str) -> None:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(stack.postgres.url_for(purpose))
    try:
        assert await conn.fetchval("SELECT current_user") == ROLES[purpose]
        for sql in ALLOWED[purpose]:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute(sql)
            await transaction.rollback()  # leaves nothing behind
        for sql in REFUSED[purpose]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(sql)
    finally:
        await conn.close()


def test_a_cluster_made_by_an_older_ioc_is_refused_with_the_way_out(scratch_dir) -> None:  # type: ignore[no-untyped-def]
    """Older clusters trusted every local user; they are not started as if nothing had changed."""
    from ioc.cluster import EmbeddedPostgres
    from ioc.errors import StackError
    from ioc.processes import free_port

    old = EmbeddedPostgres(scratch_dir("ioc-old-") / "pg", free_port())
    (old.root / "data").mkdir(parents=True)
    (old.root / "data" / "PG_VERSION").write_text("15\n")
    (old.root / "ioc-password").write_text("from the old layout\n")
    with pytest.raises(StackError, match=r"older ioc .* 'ioc up --reset'"):
        old.initdb()

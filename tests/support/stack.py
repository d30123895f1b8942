"""Helpers that drive the test stack: the broker's address, publishing, polling until a condition holds."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg
import pytest

from ioc.cluster import remove_linked_clusters
from ioc.errors import StackError
from ioc.processes import Child, free_port, spawn
from ioc.settings import REPO_ROOT, Settings
from ioc.up import Stack, wait_http

T = TypeVar("T")

ARTIFACTS = Path(os.environ.get("IOC_TEST_ARTIFACTS", REPO_ROOT / "artifacts"))


@dataclass(frozen=True)
class Broker:
    """Where the test broker listens, and two of its accounts (anonymous clients are refused)."""

    host: str
    port: int
    user: str = ""  # may publish on every device topic (the simulators' account)
    password: str = ""
    reader: str = ""  # may subscribe to every device topic (the ingest's account)
    reader_password: str = ""

    @property
    def url(self) -> str:
        """mqtt:// URL with the publishing account."""
        return f"mqtt://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}"

    @property
    def reader_url(self) -> str:
        """mqtt:// URL with the subscribing account."""
        return f"mqtt://{quote(self.reader, safe='')}:{quote(self.reader_password, safe='')}@{self.host}:{self.port}"


def remove_scratch(root: Path) -> None:
    """Delete a throwaway folder and the database clusters it links to (as root a private state folder's
    cluster lives under /var/lib/ioc, ioc.cluster.EmbeddedPostgres._place)."""
    remove_linked_clusters(root)
    shutil.rmtree(root, ignore_errors=True)


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns a truthy value; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


async def until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Await ``predicate()`` (a coroutine function or a plain one) until truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval)  # the poll interval of a wait with a deadline
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def log_tail(child: Child, lines: int = 30) -> str:
    """The end of a child's log, for assertion messages."""
    if child.log is None:
        return ""
    child.log.flush()
    return "\n".join(Path(child.log.name).read_text(errors="replace").splitlines()[-lines:])


def mosquitto_pub(
    broker: Broker, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, lines: bool = False
) -> None:
    """Publish with the real mosquitto_pub client: one message, or one per line of ``payload`` (``lines``)."""
    cmd = [
        "mosquitto_pub",
        "-h",
        broker.host,
        "-p",
        str(broker.port),
        "-u",
        broker.user,
        "-P",
        broker.password,
        "-t",
        topic,
        "-q",
        str(qos),
    ]
    cmd.append("-l" if lines else "-s" if payload else "-n")  # -s refuses empty input; -n sends zero bytes
    if retain:
        cmd.append("-r")
    subprocess.run(cmd, input=payload, check=True, timeout=10)


async def register_devices(pool: asyncpg.Pool, *devices: tuple[str, str, str]) -> None:
    """Register (device_id, kind, format) test devices and tell the ingest workers to reload."""
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, format, name, metadata) VALUES ($1, $2, $3, $1, '{}') "
        "ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind, format = EXCLUDED.format",
        list(devices),
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")


async def wait_rows(
    pool: asyncpg.Pool, sql: str, *args: object, count: int = 1, timeout: float = 10.0
) -> list[asyncpg.Record]:
    """Poll ``sql`` until it returns at least ``count`` rows."""
    deadline = time.monotonic() + timeout
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await pool.fetch(sql, *args)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s: {len(rows)} of {count} rows for {sql!r} {args!r}")


@contextmanager
def own_stack(root: Path, devices: int = 0) -> Iterator[Stack]:
    """A database and broker of a test's own (for tests that stop or kill them), with ``devices`` flood devices
    ``LOAD-00001``... (the ids `ioc simulate --load` publishes as); stopped on exit."""
    stack = Stack(
        Settings(state_dir=root, db_port=free_port(), mqtt_port=free_port(), environment="test"), fast_db=True
    )
    stack.prepare_state(reset=False)
    stack.start_services()
    try:
        stack.load_data(None)
        assert stack.postgres is not None
        stack.postgres.psql(
            "INSERT INTO devices (device_id, kind, name) SELECT 'LOAD-' || lpad(i::text, 5, '0'), "
            f"'flood', 'load' FROM generate_series(1, {devices}) i"
        )
        yield stack
    finally:
        stack.stop()


def start_worker(stack: Stack, client_id: str, env: dict[str, str] | None = None, timeout: float = 60) -> Child:
    """`ioc ingest` with its own client id (and ``env`` added), returned once subscribed (its first heartbeat row)."""
    env = {**stack.child_env("ingest"), "IOC_INGEST_METRICS_PORT": "0", **(env or {})}
    log = stack.state_dir / "logs" / f"{client_id}.log"
    child = spawn(client_id, [sys.executable, "-m", "ioc.cli", "ingest", "--client-id", client_id], log, env=env)
    assert stack.postgres is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.proc.poll() is None:
        seen = stack.postgres.psql(
            f"SELECT count(*) FROM ingest_workers WHERE worker_id = '{client_id}' "
            "AND heartbeat_at > now() - interval '10 seconds'"
        )
        if seen == "1":
            return child
        time.sleep(0.2)  # the poll interval of a wait with a deadline
    tail = log_tail(child)
    child.stop()
    raise StackError(f"ingest worker {client_id} did not start within {timeout:.0f} s:\n{tail}")


@contextmanager
def serving(run_ioc: Callable[..., Child], name: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`ioc serve` of a test's own on a free port (``run_ioc`` is the fixture): its base URL once healthy; stopped
    on exit."""
    port = free_port()
    child = run_ioc(f"{name}-{port}", "serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/api/v1/health", 30, child)
        yield base
    finally:
        child.stop()

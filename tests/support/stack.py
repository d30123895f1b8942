"""Helpers that drive the test stack: the broker's address, publishing, polling until a condition holds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import asyncpg
import pytest

from ioc.processes import Child
from ioc.settings import REPO_ROOT

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

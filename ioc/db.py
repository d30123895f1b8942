"""Database helpers: migrations, connection pools, and the one-line errors for a broken URL."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from ioc.errors import StackError
from ioc.settings import REPO_ROOT
from ioc.timescale import INSTALLED_VERSION_SQL

logger = logging.getLogger(__name__)

UNREACHABLE_HINT = "check IOC_DATABASE_URL (beside `ioc up`: run from its folder, or give its --state-dir)"

# After each committed batch the ingest sends NOTIFY ioc_ingest with a small JSON payload:
# {"w": worker id, "t": commit time (ISO UTC), "rows": measurement rows, "events": n, "status": n,
#  "devices": [device ids whose state changed], "kinds": [kinds touched]}
# A batch touching more devices than fit in one payload (< 8,000 bytes) sends further notices
# {"w", "t", "devices"} in the same transaction. A notice without "devices" means "reload them all".
NOTIFY_CHANNEL = "ioc_ingest"
ALERTS_CHANNEL = "ioc_alerts"  # every alert transition (dashboards.alerts.store)
REGISTRY_CHANNEL = "ioc_registry"  # the device registry changed (``ioc devices import``)
FORECASTS_CHANNEL = "ioc_forecasts"  # the forecast job stored a new round (payload: its origin, ISO UTC)
INCIDENTS_CHANNEL = "ioc_incidents"  # an incident's timeline grew (incidents.store.event; payload: its id)
NOTICE_BYTES = 7000  # a notice's payload at most (PostgreSQL refuses 8,000 bytes, failing the transaction)


def commit_notices(head: dict[str, Any], devices: list[str]) -> list[str]:
    """The payloads announcing a commit: ``head`` (the counts) with the first devices, then as many
    ``{"w", "t", "devices"}`` notices as the rest need, each under NOTICE_BYTES."""
    notices: list[str] = []
    part: list[str] = []
    size = len(json.dumps(head)) + 16
    for device_id in devices:
        if part and size + len(device_id) + 4 > NOTICE_BYTES:
            notices.append(json.dumps({**head, "devices": part}, separators=(",", ":")))
            head = {"w": head.get("w"), "t": head.get("t")}  # the counts go with the first part only
            part, size = [], len(json.dumps(head)) + 16
        part.append(device_id)
        size += len(device_id) + 4
    notices.append(json.dumps({**head, "devices": part}, separators=(",", ":")))
    return notices


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}:{parts.port or 5432}{parts.path}"


def sqlalchemy_url(url: str) -> str:
    """A libpq URL as SQLAlchemy's asyncpg dialect takes it (Alembic's driver, so no second PostgreSQL driver)."""
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def migrate(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision``, with a one-line StackError when the database is unreachable."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.exc import OperationalError

    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["database_url"] = url
    try:
        command.upgrade(cfg, revision)
    except OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StackError(f"cannot reach the database at {describe(url)} ({first}): {UNREACHABLE_HINT}") from exc
    except OSError as exc:  # asyncpg's connect raises the socket's error itself (refused, no such host)
        raise StackError(f"cannot reach the database at {describe(url)} ({exc}): {UNREACHABLE_HINT}") from exc


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection set-up: JSON codecs for json/jsonb."""
    import json

    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    """An asyncpg pool with our codecs; raises StackError with a readable message on failure."""
    try:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=init_connection, **kwargs)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StackError(f"cannot reach the database at {describe(url)} ({exc}): {UNREACHABLE_HINT}") from exc
    assert pool is not None
    return pool


async def timescaledb_version(conn: asyncpg.Connection) -> str | None:
    """The installed TimescaleDB version, or None on plain PostgreSQL."""
    return await conn.fetchval(INSTALLED_VERSION_SQL)  # type: ignore[no-any-return]


async def timescaledb_license(conn: asyncpg.Connection) -> str | None:
    """'apache' or 'timescale' (community features: continuous aggregates, compression), None without it."""
    try:
        return await conn.fetchval("SHOW timescaledb.license")  # type: ignore[no-any-return]
    except asyncpg.PostgresError:
        return None


T = TypeVar("T")


def run_on_connection(url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """For command-line tools: run ``work`` on one connection to ``url`` in a fresh event loop."""

    async def go() -> T:
        pool = await create_pool(url, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await work(conn)
        finally:
            await pool.close()

    return asyncio.run(go())

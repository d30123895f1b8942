"""``GET /api/v1/health``: database, broker and ingest at a glance; always 200, ``status`` tells."""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from fastapi import APIRouter

from dashboards.api.deps import PoolDep, SettingsDep
from ioc.db import timescaledb_license, timescaledb_version
from ioc.supervisor import read_status

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])
INGEST_FRESH_S = 30.0
BROKER_CACHE_S = 5.0
CHECK_TIMEOUT_S = 2.0
_broker_cache: dict[str, tuple[float, bool]] = {}


def _version() -> str:
    try:
        return metadata.version("ioc")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def public_url(url: str) -> str:
    """The broker URL without user or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or 'localhost'}{port}"


async def broker_ok(url: str) -> bool:
    """Whether the broker accepts a TCP connection (cached for a few seconds)."""
    cached = _broker_cache.get(url)
    if cached and time.monotonic() - cached[0] < BROKER_CACHE_S:
        return cached[1]
    parts = urlsplit(url)
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "localhost", port), CHECK_TIMEOUT_S
        )
        writer.close()
        ok = True
    except (OSError, TimeoutError):
        ok = False
    _broker_cache[url] = (time.monotonic(), ok)
    return ok


async def _database(pool: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), pool.acquire() as conn:
            version = await timescaledb_version(conn)
            license_ = await timescaledb_license(conn) if version else None
            rows = await conn.fetch(
                "SELECT worker_id, extract(epoch FROM now() - heartbeat_at) AS age, stats "
                "FROM ingest_workers ORDER BY worker_id"
            )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        logger.warning("health: database check failed: %s", exc)
        return {"ok": False, "timescaledb": None, "license": None}, []
    workers = [
        {"worker_id": r["worker_id"], "heartbeat_age_s": round(float(r["age"]), 1), "stats": r["stats"]} for r in rows
    ]
    return {"ok": True, "timescaledb": version, "license": license_}, workers


@router.get("/health")
async def health(pool: PoolDep, settings: SettingsDep) -> dict[str, Any]:
    """Health of the database, the broker and the ingest workers."""
    (database, workers), broker = await asyncio.gather(_database(pool), broker_ok(settings.resolved_mqtt_url()))
    ingest_ok = any(w["heartbeat_age_s"] < INGEST_FRESH_S for w in workers)
    # Under `ioc up`: its supervisor's view of every process (state, restarts, last exit code, since).
    processes = read_status(settings.state_dir)
    failing = any(p.get("state") == "failing" for p in (processes or {}).values())
    ok = database["ok"] and broker and ingest_ok and not failing
    body = {
        "status": "ok" if ok else "degraded",
        "version": _version(),
        "database": database,
        "broker": {"ok": broker, "url": public_url(settings.resolved_mqtt_url())},
        "ingest": {"ok": ingest_ok, "workers": workers},
    }
    if processes is not None:
        body["processes"] = processes
    return body

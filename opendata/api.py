"""The public SensorThings API at ``/sta/v1.1``: routes, the read-only pool, per-address rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ioc.cluster import embedded_database_url
from ioc.db import timescaledb_version
from ioc.grants import ROLES
from ioc.kinds import KindSpec, load_kinds
from ioc.settings import Settings
from opendata.bulk_job import BulkJob
from opendata.cache import Reply, ResponseCache
from opendata.config import OpenDataConfig, load_config
from opendata.entities import build
from opendata.errors import QueryError
from opendata.keys import HEADER, REFRESH_S, KeyStore, seconds_to_midnight
from opendata.options import parse_options
from opendata.query import QUERY_CANCELED, NotFound, Reader, sqlstate
from opendata.ratelimit import Gate, RateLimiter
from opendata.site import create_site

logger = logging.getLogger(__name__)

PREFIX = "/sta/v1.1"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
]
# SQLSTATE classes of a filter that does not fit the data (a bad cast: 22,
# an operator for other types: 42).
_DATA = ("22", "42")


def read_url(settings: Settings) -> str:
    """The read-only role's URL: IOC_OPEN_DATABASE_URL, else the embedded stack's ioc_read, else the server's own
    (then every transaction is read-only, and a warning says the dedicated role is missing)."""
    if settings.open_database_url:
        return settings.open_database_url
    url = embedded_database_url(settings.state_dir, "read", settings.db_port)
    if url:
        return url
    logger.warning("open data: no %s URL (IOC_OPEN_DATABASE_URL): using the server's role, read-only", ROLES["read"])
    return settings.resolved_database_url()


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    """The open data's own pool: small, read-only transactions, every statement cut at the time-out; on a database
    of this host, its server processes run at ``IOC_OPEN_NICE`` like ``ioc open``."""
    url = url.replace("postgresql://", "postgresql+asyncpg://", 1).replace("postgres://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(
        url,
        pool_size=settings.open_pool_size,
        max_overflow=0,
        pool_timeout=settings.open_statement_timeout_ms / 1000,
        json_deserializer=orjson.loads,  # jsonb columns (properties, unitOfMeasurement, location) of every row
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.open_statement_timeout_ms),
                "default_transaction_read_only": "on",
                "application_name": "ioc-open-data",
            }
        },
    )
    host = urlsplit(url).hostname or ""
    if settings.open_nice and (host in LOCAL_HOSTS or host.startswith("/")):
        event.listen(engine.sync_engine, "connect", lambda conn, _record: _lower_priority(conn, settings.open_nice))
    return engine


def _lower_priority(dbapi_connection: Any, nice: int) -> None:
    """Lower the CPU priority of a new connection's PostgreSQL server process: public queries then yield the CPU
    to the wall's and the ingest's own database work. Not allowed (another user's process, without root): as is."""
    pid = dbapi_connection.run_async(lambda conn: conn.fetchval("SELECT pg_backend_pid()"))
    try:
        os.setpriority(os.PRIO_PROCESS, pid, max(nice, os.getpriority(os.PRIO_PROCESS, pid)))
    except (PermissionError, ProcessLookupError) as exc:
        logger.debug("open data: cannot lower the priority of database process %s: %s", pid, exc)


class OpenData:
    """What the routes share: the policy, the entity views, the pool, the rate limiter and the API keys."""

    def __init__(self, settings: Settings, config: OpenDataConfig, kinds: dict[str, KindSpec]) -> None:
        self.settings = settings
        self.config = config
        self.kinds = kinds
        self.sets = build(config, kinds)
        self.limiter = RateLimiter(settings.open_rate_per_minute, settings.open_rate_burst)
        self.gate = Gate(settings.open_max_concurrent, settings.open_max_waiting)
        self.cache = ResponseCache(settings.open_cache_ms)
        self.keys = KeyStore()
        self.engine: AsyncEngine | None = None
        self.bulk_job: BulkJob | None = None

    @asynccontextmanager
    async def running(self, pool: asyncpg.Pool) -> AsyncIterator[None]:
        """For the application's lifetime: the read-only pool, the keys' sync (on the server's ``pool``, which
        may write the use) and the bulk files' job."""
        url = read_url(self.settings)
        self.engine = make_engine(url, self.settings)
        logger.info("open data on %s as %s", PREFIX, urlsplit(url).username)
        async with pool.acquire() as conn:
            if await timescaledb_version(conn):
                self.sets = build(self.config, self.kinds, timescale=True)
        await self.keys.refresh(pool)
        sync = asyncio.create_task(self._sync_keys(pool), name="open-data-keys")
        try:
            async with self.cache.listening_on(url), BulkJob(self.settings, url) as self.bulk_job:
                yield
        finally:
            sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sync
            await self.keys.refresh(pool)  # the last counts
            await self.engine.dispose()
            self.engine = None

    async def _sync_keys(self, pool: asyncpg.Pool) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            await self.keys.refresh(pool)

    async def admit(self, request: Request) -> Response | None:
        """None when the request may go on (its key, if any, noted on ``request.state``), else the refusal:
        401 for an unknown or revoked key, 429 with Retry-After past a rate or a key's daily rows."""
        presented = request.headers.get(HEADER)
        request.state.api_key = None
        if presented is None:
            if wait := self.limiter.take(_client(request)):
                return _error(429, "too many requests from this address", **{"Retry-After": str(math.ceil(wait))})
            return None
        key = self.keys.find(presented.strip())
        if key is None:
            return _error(401, f"unknown or revoked API key (the {HEADER} header); leave it out to read anonymously")
        if wait := self.keys.take(key):
            message = f"this API key's rate ({key.per_minute} requests a minute) is used up"
            return _error(429, message, **{"Retry-After": str(math.ceil(wait))})
        if self.keys.rows_today(key) >= key.rows_per_day:
            wait = seconds_to_midnight(datetime.now(UTC))
            message = f"this API key's {key.rows_per_day:,} rows a day are used up (until 00:00 UTC)"
            return _error(429, message, **{"Retry-After": str(math.ceil(wait))})
        request.state.api_key = key
        return None

    def meter(self, request: Request, rows: int) -> None:
        """Count a served request of ``rows`` rows against its key (anonymous requests are not metered)."""
        key = getattr(request.state, "api_key", None)
        if key is not None:
            self.keys.meter(key, rows)


def _number(value: Any) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": status, "type": "error", "message": message}, status_code=status, headers=headers)


def _reply(status: int, message: str, **headers: str) -> Reply:
    """An error as a reply of the cache (shared with the requests that waited for it, never kept)."""
    return Reply(status, orjson.dumps({"code": status, "type": "error", "message": message}), headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """True when an If-None-Match header names ``etag`` (or ``*``); weak tags compare equal to strong ones."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def create_router(settings: Settings) -> tuple[APIRouter, OpenData]:
    """The router and its state; the policy file is read and checked here, so a bad one stops the start."""
    kinds = load_kinds(settings.kinds_file)
    config = load_config(settings.open_data_file, kinds)
    state = OpenData(settings, config, kinds)
    cache_control = (
        f"public, max-age={settings.open_cache_ms // 1000}" if settings.open_cache_ms >= 1000 else "no-cache"
    )
    router = APIRouter(prefix=PREFIX, tags=["open data (SensorThings 1.1)"])

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/") + PREFIX

    @router.get("", summary="Service root: the entity sets and conformance classes")
    async def root(request: Request) -> Response:
        """The SensorThings service root (public)."""
        if refused := await state.admit(request):
            return refused
        base = base_url(request)
        return JSONResponse(
            {
                "value": [{"name": name, "url": f"{base}/{name}"} for name in state.sets],
                "serverSettings": {"conformance": CONFORMANCE},
            }
        )

    @router.get("/{path:path}", summary="Entities, navigation and properties, with the STA query options")
    async def read(path: str, request: Request) -> Response:
        """Any SensorThings read below the service root (public, read-only); the same request again is answered
        from the response cache until the next commit (opendata/cache.py)."""
        if refused := await state.admit(request):
            return refused
        if state.engine is None:
            return _error(503, "open data is starting")
        key = (base_url(request), path, request.url.query)
        reply = await state.cache.answer(key, lambda: compute(path, request))
        if reply.status != 200:
            return Response(reply.body, reply.status, reply.headers, reply.media_type)
        state.meter(request, reply.rows)
        headers = {"ETag": reply.etag, "Cache-Control": cache_control}
        if _matches(request.headers.get("if-none-match"), headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(reply.body, 200, headers, reply.media_type)

    async def compute(path: str, request: Request) -> Reply:
        """The reply of a read: the page, or the error it met."""
        assert state.engine is not None
        query = dict(request.query_params)
        try:
            if any("\x00" in text for text in (path, *query.values())):
                raise QueryError("a NUL character is not allowed in a path or query option")
            opts = parse_options(query)
            async with state.gate.turn() as admitted:
                if not admitted:
                    return _reply(503, "the open data service is busy: try again shortly", **{"Retry-After": "1"})
                async with state.engine.connect() as conn:
                    reader = Reader(state.sets, conn, base_url(request), settings.open_count_exact_ms)
                    body = await reader.read(path, opts, str(request.url).split("?")[0], query)
        except QueryError as exc:
            return _reply(400, str(exc))
        except NotFound as exc:
            return _reply(404, str(exc))
        except DBAPIError as exc:
            return _database_error(exc, settings)
        except PoolTimeout:
            # Every connection of the open data pool stayed busy for a whole time-out: more public demand than
            # IOC_OPEN_POOL_SIZE connections serve. Refused, so the wall's own pool is never asked.
            return _reply(503, "the open data service is busy: try again shortly", **{"Retry-After": "1"})
        if isinstance(body, str):
            return Reply(200, body.encode(), "text/plain; charset=utf-8", rows=1)
        return Reply(200, orjson.dumps(body, default=_number), rows=_rows(body))

    return router, state


def _rows(body: dict[str, Any]) -> int:
    """Rows a response carries: its entities, or its dataArray rows (one for a single entity)."""
    value = body.get("value")
    if not isinstance(value, list):
        return 1
    return sum(int(v.get("dataArray@iot.count", 1)) if isinstance(v, dict) else 1 for v in value)


def _client(request: Request) -> str:
    """The client's address (uvicorn already applied X-Forwarded-For from IOC_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def _database_error(exc: DBAPIError, settings: Settings) -> Reply:
    code = sqlstate(exc)
    if code == QUERY_CANCELED:
        limit = settings.open_statement_timeout_ms / 1000
        return _reply(503, f"the query ran longer than {limit:g} s: narrow it with $filter or a smaller $top")
    if code.startswith(_DATA):
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return _reply(400, f"the query does not fit the data: {first}")
    logger.warning("open data query failed: %s", exc)
    return _reply(503, "the open data service cannot reach its database; try again shortly")


def mount(app: FastAPI, settings: Settings) -> OpenData:
    """Add the open data routes to ``app``; the caller enters ``state.running()`` in its lifespan."""
    router, state = create_router(settings)
    app.include_router(router)
    app.include_router(create_site(state, load_kinds(settings.kinds_file)))
    app.state.open_data = state
    return state

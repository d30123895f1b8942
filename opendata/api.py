"""The public SensorThings API at ``/sta/v1.1``: routes, the read-only pool, per-address rate limits."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ioc.cluster import embedded_database_url
from ioc.grants import ROLES
from ioc.kinds import load_kinds
from ioc.settings import Settings
from opendata.config import OpenDataConfig, load_config
from opendata.entities import EntitySet, build
from opendata.filters import QueryError
from opendata.options import parse_options
from opendata.query import NotFound, Reader

logger = logging.getLogger(__name__)

PREFIX = "/sta/v1.1"
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
]
# SQLSTATEs of a statement cut by the time-out, and of a filter that does not fit the data (a bad cast: 22,
# an operator for other types: 42).
_TIMEOUT = "57014"
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
    """The open data's own pool: small, read-only transactions, every statement cut at the time-out."""
    url = url.replace("postgresql://", "postgresql+asyncpg://", 1).replace("postgres://", "postgresql+asyncpg://", 1)
    return create_async_engine(
        url,
        pool_size=settings.open_pool_size,
        max_overflow=0,
        pool_timeout=settings.open_statement_timeout_ms / 1000,
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.open_statement_timeout_ms),
                "default_transaction_read_only": "on",
                "application_name": "ioc-open-data",
            }
        },
    )


class RateLimiter:
    """A token bucket per client address: ``rate`` requests per minute, bursts of ``burst``."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str, now: float | None = None) -> float:
        """0 when ``client`` may go on, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self.buckets) >= self.max_clients and client not in self.buckets:
            self._forget_full(now)
        self.buckets[client] = (tokens - 1, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: they hold no state worth keeping."""
        full = [c for c, (t, last) in self.buckets.items() if t + (now - last) * self.rate >= self.burst]
        for client in full:
            del self.buckets[client]


class OpenData:
    """What the routes share: the policy, the entity views, the pool and the rate limiter."""

    def __init__(self, settings: Settings, config: OpenDataConfig, sets: dict[str, EntitySet]) -> None:
        self.settings = settings
        self.config = config
        self.sets = sets
        self.limiter = RateLimiter(settings.open_rate_per_minute, settings.open_rate_burst)
        self.engine: AsyncEngine | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Open the pool for the application's lifetime."""
        url = read_url(self.settings)
        self.engine = make_engine(url, self.settings)
        logger.info("open data on %s as %s", PREFIX, urlsplit(url).username)
        try:
            yield
        finally:
            await self.engine.dispose()
            self.engine = None


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": status, "type": "error", "message": message}, status_code=status, headers=headers)


def create_router(settings: Settings) -> tuple[APIRouter, OpenData]:
    """The router and its state; the policy file is read and checked here, so a bad one stops the start."""
    kinds = load_kinds(settings.kinds_file)
    config = load_config(settings.open_data_file, kinds)
    state = OpenData(settings, config, build(config, kinds))
    router = APIRouter(prefix=PREFIX, tags=["open data (SensorThings 1.1)"])

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/") + PREFIX

    @router.get("", summary="Service root: the entity sets and conformance classes")
    async def root(request: Request) -> Response:
        """The SensorThings service root (public)."""
        if wait := state.limiter.take(_client(request)):
            return _error(429, "too many requests from this address", **{"Retry-After": str(math.ceil(wait))})
        base = base_url(request)
        return JSONResponse(
            {
                "value": [{"name": name, "url": f"{base}/{name}"} for name in state.sets],
                "serverSettings": {"conformance": CONFORMANCE},
            }
        )

    @router.get("/{path:path}", summary="Entities, navigation and properties, with the STA query options")
    async def read(path: str, request: Request) -> Response:
        """Any SensorThings read below the service root (public, read-only)."""
        if wait := state.limiter.take(_client(request)):
            return _error(429, "too many requests from this address", **{"Retry-After": str(math.ceil(wait))})
        if state.engine is None:
            return _error(503, "open data is starting")
        query = dict(request.query_params)
        try:
            if any("\x00" in text for text in (path, *query.values())):
                raise QueryError("a NUL character is not allowed in a path or query option")
            opts = parse_options(query)
            async with state.engine.connect() as conn:
                reader = Reader(state.sets, conn, base_url(request))
                body = await reader.read(path, opts, str(request.url).split("?")[0], query)
        except QueryError as exc:
            return _error(400, str(exc))
        except NotFound as exc:
            return _error(404, str(exc))
        except DBAPIError as exc:
            return _database_error(exc, settings)
        if isinstance(body, str):
            return PlainTextResponse(body)
        return JSONResponse(body)

    return router, state


def _client(request: Request) -> str:
    """The client's address (uvicorn already applied X-Forwarded-For from IOC_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def _database_error(exc: DBAPIError, settings: Settings) -> JSONResponse:
    code = _sqlstate(exc)
    if code == _TIMEOUT:
        limit = settings.open_statement_timeout_ms / 1000
        return _error(503, f"the query ran longer than {limit:g} s: narrow it with $filter or a smaller $top")
    if code.startswith(_DATA):
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return _error(400, f"the query does not fit the data: {first}")
    logger.warning("open data query failed: %s", exc)
    return _error(503, "the open data service cannot reach its database; try again shortly")


def _sqlstate(exc: DBAPIError) -> str:
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if code:
            return str(code)
    return ""


def mount(app: FastAPI, settings: Settings) -> OpenData:
    """Add the open data routes to ``app``; the caller enters ``state.running()`` in its lifespan."""
    router, state = create_router(settings)
    app.include_router(router)
    app.state.open_data = state
    return state

"""The FastAPI application: REST API, login and users, websocket, metrics and (when present) the pages.

Who may call what is declared per route (see ``dashboards.security``); ``/metrics`` answers loopback only.

The lifespan owns the connection pool, the live hub, the alert engine, the field teams' notification
deliverer, the what-if queue (``dashboards.simulations``) and the forecast job; all are stopped and awaited
on shutdown. ``app.state.availability`` follows the database through outages (see ``dashboards.availability``).
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import timedelta
from importlib import metadata
from typing import Any

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp

from dashboards import apidocs, metrics, security, websocket
from dashboards.alerts.engine import AlertEngine
from dashboards.api import build_router, errors
from dashboards.api.responses import SafeJSONResponse
from dashboards.availability import Availability
from dashboards.diagnostics import stacks_on_sigusr1
from dashboards.housekeeping import Housekeeping
from dashboards.hub import Hub
from dashboards.simulations import Simulations
from incidents.notify import Deliverer
from ioc.audit import RefusalLog
from ioc.db import create_pool, timescaledb_version
from ioc.kinds import load_kinds
from ioc.sessions import SessionPolicy
from ioc.settings import Settings, get_settings
from ioc.throttle import ThrottlePolicy
from opendata.api import mount as mount_open_data

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return metadata.version("ioc")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _include_pages(app: FastAPI) -> None:
    """Serve the frontend's pages if its module exists (it mounts its own static files)."""
    try:
        pages = importlib.import_module("dashboards.pages")
    except ModuleNotFoundError as exc:
        if exc.name == "dashboards.pages":
            logger.info("dashboards.pages is not installed: API only")
            return
        raise
    app.include_router(pages.router)


def _forecast_job(pool: Any, url: str, settings: Settings) -> AbstractAsyncContextManager[Any]:
    """The forecast job (forecast.job) when IOC_FORECAST_ENABLED, else nothing."""
    if not settings.forecast_enabled:
        return nullcontext()
    from forecast.job import ForecastJob

    return ForecastJob(pool, url, settings)


class _App(FastAPI):
    """FastAPI with ``security.NoSniff`` outside everything, even the 500 handler's middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, wrapped."""
        return security.NoSniff(super().build_middleware_stack())


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The server's services from start-up to shutdown: pool, hub, alerts, chores, deliverer, open data, forecasts."""
    settings: Settings = app.state.settings
    url = settings.resolved_database_url()
    # No connection floor: asyncpg would otherwise retry it through an outage with a traceback per try
    # (the outage is reported once, by dashboards.availability); released connections stay pooled.
    pool = await create_pool(url, min_size=0, max_size=16)
    try:
        async with pool.acquire() as conn:
            timescale = await timescaledb_version(conn) is not None
        kinds = set(load_kinds(settings.kinds_file))
        app.state.timescale = timescale  # readings use time_bucket when TimescaleDB is present, else date_bin
        async with Hub(pool, url, kinds, settings.ws_coalesce_ms, app.state.availability) as hub:
            engine = AlertEngine(pool, url, settings, hub)
            chores = Housekeeping(
                pool, app.state.refusals, timedelta(days=settings.audit_retention_days), ThrottlePolicy()
            )
            deliverer = Deliverer(
                pool,
                smtp_url=settings.smtp_url,
                sender=settings.smtp_from,
                max_attempts=settings.notify_max_attempts,
                backoff=settings.notify_backoff_s,
            )
            forecasts = _forecast_job(pool, url, settings)
            simulations = Simulations(str(settings.fleet_file), lambda: hub.live.devices)
            open_data = app.state.open_data
            public = open_data.running(pool) if open_data is not None else nullcontext()
            async with engine, chores, deliverer, simulations, public, forecasts as job:
                app.state.forecast_job = job
                app.state.simulations = simulations
                app.state.pool = pool
                app.state.hub = hub
                app.state.engine = engine
                logger.info("live server ready (timescaledb=%s)", timescale)
                # What start-up built (tables, the open data views, settings) lives as long as the process: out
                # of the collector's sight, a full collection no longer walks it (they were the slow tail of
                # large open data pages).
                gc.freeze()
                with stacks_on_sigusr1():
                    yield
    finally:
        await pool.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (default: the environment's)."""
    settings = settings or get_settings()
    app = _App(
        title="ioc: Intelligent Operations Centre API",
        version=_version(),
        lifespan=_lifespan,
        default_response_class=SafeJSONResponse,
        docs_url=None,  # served by dashboards.apidocs from local files
        redoc_url=None,
        description="REST and websocket API of the Ho Chi Minh City operations centre; see docs/api.md.",
    )
    app.state.settings = settings
    app.state.session_policy = SessionPolicy.from_settings(settings)
    app.state.refusals = RefusalLog()
    app.state.availability = Availability(timedelta(minutes=settings.session_outage_grace_minutes))
    errors.install(app)
    app.middleware("http")(metrics.time_requests)
    app.include_router(build_router())
    app.include_router(security.router)
    app.include_router(websocket.router)
    # Prometheus scrapes from this host; nobody else (a browser elsewhere) may read the metrics.
    app.include_router(metrics.router, dependencies=[Depends(security.loopback_only)])
    app.include_router(apidocs.router)
    # Public and read-only: /sta/v1.1 and /open/... (opendata/), unless `ioc open` serves them in its own process.
    if settings.open_in_serve:
        mount_open_data(app, settings)
    else:
        app.state.open_data = None
    _include_pages(app)
    return app

"""``ioc open``: the open data alone (``/sta/v1.1`` and ``/open/...``) in a process of its own, at a lower CPU
priority than the wall's ``ioc serve`` (set ``IOC_OPEN_IN_SERVE=false`` there), so public load cannot take the
CPU the wall needs. It reads through its own read-only pool, as inside ``ioc serve``; a small pool on the
server's role reads the API keys and writes their use."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from ioc.db import create_pool
from ioc.settings import Settings
from opendata.api import mount

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ioc open``."""
    parser.add_argument("--host", default=None, help="interface to listen on (default IOC_HTTP_HOST, 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8001, help="port (default 8001)")


def create_open_app(settings: Settings) -> FastAPI:
    """The application: the open data routes and their lifespan, nothing of the wall."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings.resolved_database_url(), min_size=0, max_size=2)
        try:
            async with state.running(pool):
                yield
        finally:
            await pool.close()

    app = FastAPI(title="ioc open data", lifespan=lifespan, docs_url=None, redoc_url=None)
    state = mount(app, settings)
    return app


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM at ``IOC_OPEN_NICE``; returns the exit code."""
    if settings.open_nice:
        os.nice(settings.open_nice)
    host = args.host or settings.http_host
    config = uvicorn.Config(
        create_open_app(settings),
        host=host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    logger.info("serving the open data on http://%s:%d (nice %d)", host, args.port, os.nice(0))
    server.run()
    return 0 if server.started else 1

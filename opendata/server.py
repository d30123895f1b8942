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

from fastapi import FastAPI

from ioc.db import create_pool
from ioc.serving import serve
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
    logger.info("open data at nice %d", os.nice(0))
    return serve(create_open_app(settings), settings, args.host or settings.http_host, args.port, "the open data")

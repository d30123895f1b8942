"""``ioc open``: the open data alone (``/sta/v1.1`` and ``/open/...``) in a process of its own, at a lower CPU
priority than the wall's ``ioc serve`` (set ``IOC_OPEN_IN_SERVE=false`` there), so public load cannot take the
CPU the wall needs. It reads through its own read-only pool, as inside ``ioc serve``; a small pool on the
server's role reads the API keys and writes their use."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ioc.db import create_pool
from ioc.serving import serve
from ioc.settings import Settings
from opendata.api import PREFIX, mount, read_url
from opendata.mqtt import ObservationPublisher

DEFAULT_PORT = 8001

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ioc open``."""
    parser.add_argument("--host", default=None, help="interface to listen on (default IOC_HTTP_HOST, 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default IOC_OPEN_HTTP_PORT, else 8001)")


def create_open_app(settings: Settings, port: int = DEFAULT_PORT) -> FastAPI:
    """The application: the open data routes, ``/open/health`` and their lifespan (with the MQTT push when
    ``IOC_OPEN_MQTT_URL`` names the public broker), nothing of the wall."""
    publisher: ObservationPublisher | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal publisher
        pool = await create_pool(settings.resolved_database_url(), min_size=0, max_size=2)
        try:
            async with state.running(pool), contextlib.AsyncExitStack() as stack:
                if (mqtt_url := settings.resolved_open_mqtt_url()) and state.engine is not None:
                    base = settings.open_api_url or (settings.public_url.rstrip("/") + PREFIX if settings.public_url
                                                     else f"http://localhost:{port}{PREFIX}")  # fmt: skip
                    publisher = ObservationPublisher(state.sets["Observations"], mqtt_url, base)
                    await stack.enter_async_context(publisher.running(state.engine, read_url(settings)))
                yield
        finally:
            await pool.close()

    app = FastAPI(title="ioc open data", lifespan=lifespan, docs_url=None, redoc_url=None)
    state = mount(app, settings)

    @app.get("/open/health", summary="Whether the open data process is up, and its MQTT push")
    async def health() -> dict[str, Any]:
        """200 while serving; ``mqtt`` says whether the publisher is connected and how much it pushed."""
        mqtt = {"connected": publisher.connected, "published": publisher.published} if publisher else None
        return {"status": "ok", "nice": os.nice(0), "mqtt": mqtt, **state.gate.status(), "cache": state.cache.status()}

    return app


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM at ``IOC_OPEN_NICE``; returns the exit code."""
    if settings.open_nice:
        os.nice(settings.open_nice)
    port = args.port or settings.open_http_port or DEFAULT_PORT
    logger.info("open data at nice %d", os.nice(0))
    return serve(create_open_app(settings, port), settings, args.host or settings.http_host, port, "the open data")

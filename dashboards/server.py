"""``ioc serve``: run the live server (FastAPI under uvicorn)."""

from __future__ import annotations

import argparse
import logging

from dashboards.app import create_app
from dashboards.frames import FrameWriter
from ioc.serving import serve
from ioc.settings import Settings

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ioc serve``."""
    parser.add_argument("--host", default=None, help="interface to listen on (default IOC_HTTP_HOST, 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default IOC_HTTP_PORT, 8000)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    settings = settings.model_copy(
        update={"http_host": args.host or settings.http_host, "http_port": args.port or settings.http_port}
    )
    return serve(
        create_app(settings),
        settings,
        settings.http_host,
        settings.http_port,
        "the live server",
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        ws_per_message_deflate=settings.ws_compression,
        ws=FrameWriter,  # uvicorn's websockets-sansio, plus shared frames for the live route (dashboards.frames)
    )

"""Run an ASGI application under uvicorn the way every ioc server does (``ioc serve``, ``ioc open``)."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from ioc.settings import Settings

logger = logging.getLogger(__name__)


def serve(app: Any, settings: Settings, host: str, port: int, what: str, **options: Any) -> int:
    """Serve ``app`` on ``host:port`` until SIGINT/SIGTERM; returns the exit code (1 if it never started).

    Our logging, no access log or server header, a 5 s graceful shutdown; ``options`` add uvicorn settings."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        # X-Forwarded-For/-Proto are believed from IOC_TRUSTED_PROXIES only (uvicorn's own default trusts
        # 127.0.0.1, which lets anyone on this host forge the client address of audit rows and throttles).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        lifespan="on",
        timeout_graceful_shutdown=5,
        **options,
    )
    server = uvicorn.Server(config)
    logger.info("serving %s on http://%s:%d", what, host, port)
    server.run()
    return 0 if server.started else 1

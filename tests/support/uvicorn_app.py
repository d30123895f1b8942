"""An app under a real uvicorn in the test's own event loop (for tests that build a FastAPI app of a few routers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from tests.support.stack import until


@asynccontextmanager
async def serving_app(app: FastAPI, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:``port`` until the block ends; yields ``http://127.0.0.1:port``."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or task.done(), 10, 0.02, "uvicorn to start")
        if task.done():
            await task  # its error, if it stopped instead of starting
            raise AssertionError("uvicorn stopped before it started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

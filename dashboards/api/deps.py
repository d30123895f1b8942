"""Dependencies of the API routes, as ``Annotated`` aliases so route signatures stay one line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from dashboards.api.errors import ApiError
from dashboards.hub import Hub
from ioc.settings import Settings

# Until the security issue lands, every action is taken by this operator.
ANONYMOUS_OPERATOR = "operator"


def get_settings(request: Request) -> Settings:
    """The application's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_pool(request: Request) -> asyncpg.Pool:
    """The application's connection pool."""
    return request.app.state.pool  # type: ignore[no-any-return]


async def get_hub(request: Request) -> Hub:
    """The application's live hub, once its state is loaded (503 while it is not)."""
    hub: Hub = request.app.state.hub
    try:
        await hub.ready()
    except TimeoutError as exc:
        raise ApiError(503, "unavailable", "the live state is not loaded yet; try again") from exc
    return hub


async def get_conn(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for the duration of one request."""
    async with request.app.state.pool.acquire() as conn:
        yield conn


async def current_user(request: Request) -> str:
    """Who is calling: the one place authentication plugs in (every protected router depends on it)."""
    return ANONYMOUS_OPERATOR


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
HubDep = Annotated[Hub, Depends(get_hub)]
ConnDep = Annotated[asyncpg.Connection, Depends(get_conn)]
UserDep = Annotated[str, Depends(current_user)]

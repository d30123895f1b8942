"""Users for the tests of a real ``ioc serve``: one per role, logged in through the API.

A plugin (tests/conftest.py's ``pytest_plugins``): the ``people`` fixture gives each test module its own
users, all with ``PASSWORD``; ``signed_in`` gives an HTTP client holding a session cookie and sending
the page's Origin.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from dashboards.api.deps import SESSION_COOKIE
from ioc import accounts
from tests.support.live import http_origin, login

PASSWORD = "correct horse battery staple"


async def create_people(pool: asyncpg.Pool, prefix: str, password: str = PASSWORD) -> dict[str, str]:
    """One user per role with ``password``, named ``<prefix>-<role>-<random>``: {role: name}."""
    names = {role: f"{prefix}-{role}-{uuid.uuid4().hex[:8]}" for role in accounts.ROLES}
    async with pool.acquire() as conn:
        for role, name in names.items():
            await accounts.create_user(conn, name, role, password, actor="tests", source="local")
    return names


@pytest.fixture(scope="module")
async def people(pool: asyncpg.Pool) -> dict[str, str]:
    """One user per role with ``PASSWORD``, named uniquely for the module: {role: name}."""
    return await create_people(pool, "t")


@asynccontextmanager
async def signed_in(base: str, name: str, **client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on ``base`` logged in as ``name`` (cookie set), sending ``base`` as its Origin."""
    token = await login(base, name, PASSWORD, **client)
    async with httpx.AsyncClient(base_url=base, timeout=10, headers={"Origin": http_origin(base)}, **client) as c:
        c.cookies.set(SESSION_COOKIE, token)
        yield c

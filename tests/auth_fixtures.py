"""Shared by the tests of a real ``ioc serve``: one user per role, logged in through the API.

Import the fixture into a test module (``from auth_fixtures import people_fixture``; it is requested as
``people``) so each module gets its own users; ``signed_in`` gives an HTTP client holding a session
cookie and sending the page's Origin.
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
from dashboards.testing import http_origin, login
from ioc import auth

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", name="people")
async def people_fixture(pool: asyncpg.Pool) -> dict[str, str]:
    """One user per role with ``PASSWORD``, named uniquely for the module: {role: name}."""
    names = {role: f"t-{role}-{uuid.uuid4().hex[:8]}" for role in auth.ROLES}
    async with pool.acquire() as conn:
        for role, name in names.items():
            await auth.create_user(conn, name, role, PASSWORD, actor="tests", source="local")
    return names


@asynccontextmanager
async def signed_in(base: str, name: str, **client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on ``base`` logged in as ``name`` (cookie set), sending ``base`` as its Origin."""
    token = await login(base, name, PASSWORD, **client)
    async with httpx.AsyncClient(base_url=base, timeout=10, headers={"Origin": http_origin(base)}, **client) as c:
        c.cookies.set(SESSION_COOKIE, token)
        yield c

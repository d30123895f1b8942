"""Alembic environment: URL and metadata come from the application, never from alembic.ini.

Migrations run over asyncpg (SQLAlchemy's asyncpg dialect), the driver the services use, so the project
needs no second PostgreSQL driver. After the migrations, the runtime roles' grants (ioc.grants) are
applied again in the same transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from ioc import grants
from ioc.db import sqlalchemy_url
from ioc.settings import get_settings
from ioc.tables import metadata

config = context.config


def _url() -> str:
    return sqlalchemy_url(config.attributes.get("database_url") or get_settings().resolved_database_url())


def run_migrations_offline() -> None:
    """Emit SQL without a connection (``alembic upgrade --sql``)."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
        grants.apply(connection)


async def _migrate_online() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def _run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main()`` to the end, also when called from async code (its loop is busy: use one of our own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main())
        return
    with ThreadPoolExecutor(1) as worker:
        worker.submit(lambda: asyncio.run(main())).result()


def run_migrations_online() -> None:
    """Apply migrations and then the grants over a real connection."""
    _run(_migrate_online)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Alembic environment: URL and metadata come from the application, never from alembic.ini.

After the migrations, the runtime roles' grants (ioc.grants) are applied again in the same transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from ioc import grants
from ioc.settings import get_settings
from ioc.tables import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or get_settings().resolved_database_url()
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def run_migrations_offline() -> None:
    """Emit SQL without a connection (``alembic upgrade --sql``)."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations and then the grants over a real connection."""
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
            grants.apply(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

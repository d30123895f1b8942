"""ioc.tables describes exactly what the migrations create: autogenerate against the migrated database finds nothing;
ioc.grants decides every table's privileges, and the migrated database grants exactly those."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pprint import pformat
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from ioc.db import sqlalchemy_url
from ioc.grants import ROLES, RUNTIME, TABLE_GRANTS
from ioc.tables import metadata


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection with the same driver as migrations/env.py (and so as `alembic revision --autogenerate`)."""
    engine = create_async_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


def _compare(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, metadata)


async def test_autogenerate_finds_no_difference(conn: AsyncConnection) -> None:
    diff = await conn.run_sync(_compare)
    assert diff == [], f"ioc/tables and the migrations disagree:\n{pformat(diff)}"


# Autogenerate does not compare check constraints, primary keys or partial-index predicates. So build the metadata
# in a scratch schema (rolled back) and compare every constraint and index as PostgreSQL itself prints them.
DEFINITIONS = text(
    """
    SELECT t.relname, con.conname, pg_get_constraintdef(con.oid)
    FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = :schema AND t.relname = ANY(:tables) AND con.contype IN ('p', 'f', 'u', 'c', 'x')
    UNION ALL
    SELECT t.relname, i.relname, replace(pg_get_indexdef(i.oid), ' ON ' || :schema || '.', ' ON ')
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = :schema AND t.relname = ANY(:tables)
    """
)


def _definitions(conn: Connection, schema: str) -> set[tuple[str, str, str]]:
    conn.execute(text(f"SET LOCAL search_path TO {schema}"))  # foreign keys print their target unqualified
    rows = conn.execute(DEFINITIONS, {"schema": schema, "tables": sorted(metadata.tables)})
    return {(table, name, definition) for table, name, definition in rows}


def _both_definitions(conn: Connection) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    with conn.begin() as transaction:
        migrated = _definitions(conn, "public")
        conn.execute(text("CREATE SCHEMA ioc_schema_check"))
        metadata.create_all(conn.execution_options(schema_translate_map={None: "ioc_schema_check"}))
        described = _definitions(conn, "ioc_schema_check")
        transaction.rollback()
    return migrated, described


async def test_constraints_and_indexes_match_the_migrated_database(conn: AsyncConnection) -> None:
    migrated, described = await conn.run_sync(_both_definitions)
    assert migrated, "no constraints found in the migrated database"
    assert described == migrated, (
        f"only in ioc/tables:\n{pformat(sorted(described - migrated))}\n"
        f"only in the migrated database:\n{pformat(sorted(migrated - described))}"
    )


def test_every_table_has_its_grants_decided() -> None:
    """A new table needs a line in ioc/grants.py (even an empty one): the runtime roles see nothing otherwise."""
    assert set(TABLE_GRANTS) == set(metadata.tables)
    for table, grants in TABLE_GRANTS.items():
        assert set(grants) <= set(RUNTIME), table
        assert "SELECT" in grants.get("serve", ""), f"the server reads every table ({table})"


async def test_the_migrated_database_grants_exactly_ioc_grants(conn: AsyncConnection) -> None:
    rows = await conn.execute(
        text(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_schema = 'public' AND grantee = ANY(:roles)"
        ),
        {"roles": [ROLES[p] for p in RUNTIME]},
    )
    granted = {(grantee, table, privilege) for grantee, table, privilege in rows}
    wanted = {
        (ROLES[purpose], table, privilege.strip())
        for table, grants in TABLE_GRANTS.items()
        for purpose, privileges in grants.items()
        for privilege in privileges.split(",")
    }
    assert granted == wanted

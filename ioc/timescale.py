"""TimescaleDB feature detection and the calls migrations and retention make, degrading on plain PostgreSQL."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text

logger = logging.getLogger(__name__)

# The one test of "is TimescaleDB here": its installed version in this database, no row on plain PostgreSQL.
# Used by migrations (``installed``), the live server (``ioc.db.timescaledb_version``) and retention (ioc.grants).
INSTALLED_VERSION_SQL = "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"


def enable(conn: Any) -> bool:
    """Create the extension when the server can load it; return False (with a warning) on plain PostgreSQL."""
    available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first()
    if available is None:
        logger.warning("TimescaleDB is not available on this server: using plain tables (no hypertables)")
        return False
    # Installed but not preloaded: CREATE EXTENSION would fail (and break the connection), so look first.
    # The preloaded loader defines its settings (shared_preload_libraries itself is for superusers only).
    loader = text("SELECT current_setting('timescaledb.max_background_workers', true) IS NOT NULL")
    preloaded = conn.execute(loader).scalar()
    if not preloaded:
        logger.warning("TimescaleDB is installed but not in shared_preload_libraries: using plain tables")
        return False
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    return True


def installed(conn: Any) -> bool:
    """True when the timescaledb extension is installed in this database."""
    return conn.execute(text(INSTALLED_VERSION_SQL)).first() is not None


def make_hypertable(conn: Any, table: str, column: str, chunk: str) -> None:
    """Turn ``table`` into a hypertable partitioned on ``column`` (the caller checked ``installed``)."""
    conn.execute(
        text(
            f"SELECT create_hypertable('{table}', '{column}', chunk_time_interval => interval '{chunk}', "
            "if_not_exists => true, migrate_data => true)"
        )
    )

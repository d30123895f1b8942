"""Database roles and what each may do: the owner migrates, the runtime roles get only their tables.

The roles themselves are created by a superuser from ``migrations/roles.sql`` (``ioc up`` at cluster
creation, compose's database on its first start). The grants below are state, not history: they are
applied again after every ``alembic upgrade``, so a new table gets its grants by one line here.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text

from ioc.timescale import INSTALLED_VERSION_SQL

logger = logging.getLogger(__name__)

# Role of each purpose (the keys are what `ioc up`, the CLI and compose speak of).
ROLES = {"owner": "ioc_owner", "ingest": "ioc_ingest", "serve": "ioc_serve", "read": "ioc_read"}
RUNTIME = ("ingest", "serve", "read")

# Every table of ioc.tables, and the privileges each runtime role has on it (none when absent).
# ingest writes readings, quarantine and rollups; serve reads everything it shows and writes alerts,
# people, sessions, audit, device status and broker accounts; read is for exports and open data.
TABLE_GRANTS: dict[str, dict[str, str]] = {
    "zones": {"ingest": "SELECT", "serve": "SELECT", "read": "SELECT"},
    "devices": {"ingest": "SELECT, INSERT, UPDATE", "serve": "SELECT, INSERT, UPDATE", "read": "SELECT"},
    "measurements": {"ingest": "SELECT, INSERT", "serve": "SELECT", "read": "SELECT"},
    "events": {"ingest": "SELECT, INSERT", "serve": "SELECT", "read": "SELECT"},
    "quarantine": {"ingest": "SELECT, INSERT, DELETE", "serve": "SELECT"},
    "quarantine_overflow": {"ingest": "SELECT, INSERT, UPDATE, DELETE", "serve": "SELECT"},
    "latest_values": {"ingest": "SELECT, INSERT, UPDATE", "serve": "SELECT", "read": "SELECT"},
    "rollups_1m": {"ingest": "SELECT, INSERT, UPDATE", "serve": "SELECT", "read": "SELECT"},
    "snapshots": {"ingest": "SELECT, INSERT, UPDATE", "serve": "SELECT", "read": "SELECT"},
    "ingest_workers": {"ingest": "SELECT, INSERT, UPDATE", "serve": "SELECT"},
    "rollup_dirty": {"ingest": "SELECT, INSERT, UPDATE, DELETE", "serve": "SELECT"},
    "alerts": {"serve": "SELECT, INSERT, UPDATE", "read": "SELECT"},
    "alert_history": {"serve": "SELECT, INSERT", "read": "SELECT"},
    "users": {"serve": "SELECT, INSERT, UPDATE"},
    "sessions": {"serve": "SELECT, INSERT, UPDATE, DELETE"},
    "login_throttle": {"serve": "SELECT, INSERT, UPDATE, DELETE"},
    "audit_log": {"serve": "SELECT, INSERT, DELETE"},
    "mqtt_accounts": {"serve": "SELECT, INSERT, UPDATE"},
    "incidents": {"serve": "SELECT, INSERT, UPDATE", "read": "SELECT"},
    "incident_alerts": {"serve": "SELECT, INSERT, UPDATE", "read": "SELECT"},
    "incident_steps": {"serve": "SELECT, INSERT", "read": "SELECT"},
    "incident_events": {"serve": "SELECT, INSERT", "read": "SELECT"},
    "field_teams": {"serve": "SELECT, INSERT, UPDATE"},
    "notifications": {"serve": "SELECT, INSERT, UPDATE"},
    "field_links": {"serve": "SELECT, INSERT, UPDATE"},
    "incident_media": {"serve": "SELECT, INSERT"},
    "procedure_versions": {"serve": "SELECT, INSERT", "read": "SELECT"},
    # The forecast job runs in `ioc serve`: it stores forecasts every minute and a new model version daily.
    "forecast_models": {"serve": "SELECT, INSERT, DELETE"},
    "forecasts": {"serve": "SELECT, INSERT, UPDATE, DELETE", "read": "SELECT"},
    "forecast_backtests": {"serve": "SELECT, INSERT", "read": "SELECT"},
    # Open data keys are added and revoked by the owner (`ioc apikeys`); the server reads them and meters use.
    "open_api_keys": {"serve": "SELECT, INSERT, UPDATE"},  # the admin page adds and revokes keys
    "open_api_usage": {"serve": "SELECT, INSERT, UPDATE"},
}

# Retention drops whole chunks, which only the tables' owner may do: the ingest calls this function,
# which runs with the owner's rights and does nothing else.
RETENTION_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ioc_apply_retention(raw_days integer, rollup_days integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    target record;
BEGIN
    FOR target IN SELECT * FROM (VALUES ('measurements', 'time', raw_days), ('events', 'time', raw_days),
                                        ('rollups_1m', 'bucket', rollup_days)) AS t(tbl, col, days)
    LOOP
        IF EXISTS ({INSTALLED_VERSION_SQL}) THEN
            PERFORM drop_chunks(target.tbl::regclass, older_than => now() - make_interval(days => target.days));
        ELSE
            EXECUTE format('DELETE FROM %I WHERE %I < now() - make_interval(days => $1)', target.tbl, target.col)
            USING target.days;
        END IF;
    END LOOP;
    DELETE FROM quarantine WHERE received_at < now() - make_interval(days => raw_days);
    DELETE FROM quarantine_overflow WHERE last_at < now() - make_interval(days => raw_days);
END
$$
"""


def apply(conn: Any) -> None:
    """Grant each runtime role exactly its TABLE_GRANTS (revoking anything else) on a migrated database."""
    names = [ROLES[r] for r in RUNTIME]
    found = conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"), {"names": names})
    present = {row[0] for row in found}
    runtime = {purpose: ROLES[purpose] for purpose in RUNTIME if ROLES[purpose] in present}
    conn.execute(text(RETENTION_FUNCTION))
    conn.execute(text("REVOKE ALL ON FUNCTION ioc_apply_retention(integer, integer) FROM PUBLIC"))
    if not runtime:
        logger.warning("no ioc runtime roles in this database (migrations/roles.sql): grants skipped")
        return
    roles = ", ".join(runtime.values())
    tables = {row[0] for row in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
    for table in sorted(tables):  # one by one: TimescaleDB passes grants on a hypertable on to its chunks
        conn.execute(text(f'REVOKE ALL ON TABLE "{table}" FROM {roles}'))
    for table, grants in TABLE_GRANTS.items():
        for purpose, privileges in grants.items():
            if table in tables and purpose in runtime:
                conn.execute(text(f'GRANT {privileges} ON TABLE "{table}" TO {runtime[purpose]}'))
    writers = ", ".join(runtime[p] for p in ("ingest", "serve") if p in runtime)
    if writers:
        conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {writers}"))
    if "ingest" in runtime:
        conn.execute(text(f"GRANT EXECUTE ON FUNCTION ioc_apply_retention(integer, integer) TO {runtime['ingest']}"))

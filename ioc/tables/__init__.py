"""Table definitions (SQLAlchemy Core): the Alembic target and the one description of the schema.

One module per area: ``core`` (the MetaData, zones, devices), ``ingest``,
``alerting``, ``access`` (people, sessions, audit, broker accounts), ``response`` (incidents), ``forecasting``,
``open_data``. Importing this package defines every table on ``metadata``; import tables from here.
"""

from __future__ import annotations

from ioc.tables.access import audit_log, login_throttle, mqtt_accounts, sessions, users
from ioc.tables.alerting import alert_history, alerts
from ioc.tables.core import TZ, devices, metadata, zones
from ioc.tables.forecasting import forecast_backtests, forecast_models, forecasts
from ioc.tables.ingest import (
    events,
    ingest_workers,
    latest_values,
    measurements,
    quarantine,
    quarantine_overflow,
    rollup_dirty,
    rollups_1m,
    snapshots,
)
from ioc.tables.open_data import open_api_keys, open_api_usage
from ioc.tables.response import (
    INCIDENT_OPEN,
    field_links,
    field_teams,
    incident_alerts,
    incident_events,
    incident_media,
    incident_steps,
    incidents,
    notifications,
    procedure_versions,
)

__all__ = [
    "alert_history",
    "alerts",
    "audit_log",
    "devices",
    "events",
    "field_links",
    "field_teams",
    "forecast_backtests",
    "forecast_models",
    "forecasts",
    "incident_alerts",
    "incident_events",
    "incident_media",
    "INCIDENT_OPEN",
    "incident_steps",
    "incidents",
    "ingest_workers",
    "latest_values",
    "login_throttle",
    "measurements",
    "metadata",
    "mqtt_accounts",
    "notifications",
    "open_api_keys",
    "open_api_usage",
    "procedure_versions",
    "quarantine",
    "quarantine_overflow",
    "rollup_dirty",
    "rollups_1m",
    "sessions",
    "snapshots",
    "TZ",
    "users",
    "zones",
]

"""What the ingest writes: readings, events, quarantine, latest values, rollups, snapshots and its workers' rows."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ioc.tables.core import TZ, metadata

# Numeric readings: one row per device, metric, part and time. The unique key makes writes idempotent.
measurements = Table(
    "measurements",
    metadata,
    Column("time", TZ, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("part", Text, nullable=False, server_default=""),
    Column("value", Float, nullable=False),
    Column("seq", BigInteger, nullable=True),
    UniqueConstraint("device_id", "metric", "part", "time", name="measurements_key"),
)

events = Table(
    "events",
    metadata,
    Column("time", TZ, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("attrs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    UniqueConstraint("device_id", "type", "time", name="events_key"),
)

# Refused device messages, a sample of each device's (see ingest.quarantine): the payload holds at most
# IOC_INGEST_QUARANTINE_SAMPLE_BYTES of the payload_bytes received (NULL on rows written before the budget
# existed, whose payload is whole).
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("received_at", TZ, nullable=False, server_default=func.now()),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("device_id", Text, nullable=True),
    Column("payload_bytes", Integer, nullable=True),
    Index("quarantine_received", "received_at"),
    Index("quarantine_reason", "reason", "received_at"),
)

# Refused messages past their device's sample budget: counted per device ('' when the topic names none),
# reason and window, never stored.
quarantine_overflow = Table(
    "quarantine_overflow",
    metadata,
    Column("device_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("window_start", TZ, nullable=False),
    Column("messages", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("first_at", TZ, nullable=False),
    Column("last_at", TZ, nullable=False),
    Column("last_topic", Text, nullable=False),
    PrimaryKeyConstraint("device_id", "reason", "window_start", name="quarantine_overflow_pkey"),
    Index("quarantine_overflow_last", "last_at"),
)

latest_values = Table(
    "latest_values",
    metadata,
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("part", Text, nullable=False, server_default=""),
    Column("time", TZ, nullable=False),
    Column("value", Float, nullable=False),
    PrimaryKeyConstraint("device_id", "metric", "part", name="latest_values_pkey"),
)

# 1-minute rollups, recomputed from raw rows by ingest.rollups for the minutes the writer marks dirty (rollup_dirty).
rollups_1m = Table(
    "rollups_1m",
    metadata,
    Column("bucket", TZ, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("part", Text, nullable=False, server_default=""),
    Column("count", Integer, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    UniqueConstraint("device_id", "metric", "part", "bucket", name="rollups_1m_key"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("device_id", Text, primary_key=True),
    Column("time", TZ, nullable=False),
    Column("content_type", Text, nullable=False, server_default="image/jpeg"),
    Column("data", LargeBinary, nullable=False),
)

# One row per ingest worker, refreshed every few seconds: the API's health reads it.
ingest_workers = Table(
    "ingest_workers",
    metadata,
    Column("worker_id", Text, primary_key=True),
    Column("started_at", TZ, nullable=False),
    Column("heartbeat_at", TZ, nullable=False),
    Column("stats", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)

# Minutes whose 1-minute rollup must be recomputed from raw rows (see ingest.rollups).
rollup_dirty = Table(
    "rollup_dirty",
    metadata,
    Column("bucket", TZ, nullable=False),
    Column("worker_id", Text, nullable=False),
    PrimaryKeyConstraint("bucket", "worker_id", name="rollup_dirty_pkey"),
)

# create_hypertable makes these (time DESC) indexes; 0001 makes the same ones itself on plain PostgreSQL.
Index("measurements_time_idx", measurements.c.time.desc())
Index("events_time_idx", events.c.time.desc())
Index("rollups_1m_bucket_idx", rollups_1m.c.bucket.desc())

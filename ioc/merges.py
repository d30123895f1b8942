"""The guards every writer of latest values and device status applies: state only moves forward in time.

Shared by the ingest's writer (ingest/writer.py) and the bulk load of history (ioc/bulkload.py), so a
reading or a status from the past never overrides a newer one, whoever writes it and in whatever order
their transactions commit."""

from __future__ import annotations


def merge_latest(source: str) -> str:
    """Upsert latest values from ``source`` (a SELECT of device_id, metric, part, time, value), newest wins."""
    return f"""
INSERT INTO latest_values AS l (device_id, metric, part, time, value)
{source}
ON CONFLICT (device_id, metric, part) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value
WHERE l.time <= EXCLUDED.time
"""


MERGE_LATEST_ARRAYS = merge_latest(
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[])"
)
# Writers commit concurrently, so a device's status follows the newest status-bearing message (status_at),
# not the commit order. In SET, d.* are the row's old values.
UPDATE_DEVICES = """
UPDATE devices d SET
  last_seen = GREATEST(COALESCE(d.last_seen, u.seen), u.seen),
  status = CASE WHEN d.status_at IS NULL OR u.seen >= d.status_at THEN u.status ELSE d.status END,
  status_since = CASE WHEN (d.status_at IS NULL OR u.seen >= d.status_at) AND d.status IS DISTINCT FROM u.status
                      THEN u.seen ELSE d.status_since END,
  status_at = GREATEST(COALESCE(d.status_at, u.seen), u.seen)
FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(device_id, seen, status)
WHERE d.device_id = u.device_id
"""

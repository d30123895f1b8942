"""History in bulk: rows for a stretch of time no device has reported in, written as the ingest would leave them.

The ingest writes raw rows, marks their minutes dirty and recomputes the 1-minute rollups later
(ingest/writer.py, ingest/rollups.py). A bulk load covers whole closed minutes nobody else writes, so
it COPYs the raw rows and their finished rollups in one transaction and marks nothing dirty: readers
find the same tables filled the same way. Latest values and device status move only forward in time
(the same guards as the ingest's), so history never overrides a newer reading and never looks current.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

logger = logging.getLogger(__name__)

MeasurementRow = tuple[datetime, str, str, str, float, int | None]  # time, device_id, metric, part, value, seq
# time, device_id, type, severity, confidence, attrs
EventRow = tuple[datetime, str, str, str, float, dict[str, object]]
MEASUREMENT_COLUMNS = ["time", "device_id", "metric", "part", "value", "seq"]
ROLLUP_COLUMNS = ["bucket", "device_id", "metric", "part", "count", "sum", "min", "max"]

# An event is stored as if received when it happened.
INSERT_EVENT = """
INSERT INTO events (time, device_id, type, severity, confidence, attrs, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $1) ON CONFLICT DO NOTHING
"""
SPAN_ROWS = 'SELECT min(time) AS "first", max(time) AS "last" FROM measurements WHERE time >= $1 AND time < $2'
MERGE_LATEST = """
INSERT INTO latest_values AS l (device_id, metric, part, time, value)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[])
ON CONFLICT (device_id, metric, part) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value
WHERE l.time <= EXCLUDED.time
"""
MERGE_DEVICES = """
UPDATE devices d SET
  last_seen = GREATEST(COALESCE(d.last_seen, u.seen), u.seen),
  status = u.status,
  status_since = CASE WHEN d.status IS DISTINCT FROM u.status THEN u.since ELSE d.status_since END,
  status_at = u.seen
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::timestamptz[]) AS u(device_id, seen, status, since)
WHERE d.device_id = u.device_id AND (d.status_at IS NULL OR d.status_at <= u.seen)
"""


# bucket, device_id, metric, part, count, sum, min, max
RollupRow = tuple[datetime, str, str, str, int, float, float, float]


@dataclass
class History:
    """The rows of one stretch of time: raw readings, their 1-minute rollups, events, and the end state."""

    measurements: list[MeasurementRow] = field(default_factory=list)
    rollups: list[RollupRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    # (device_id, metric, part) -> (time, value) of the newest reading
    latest: dict[tuple[str, str, str], tuple[datetime, float]] = field(default_factory=dict)
    # device_id -> (last heard at, "online" | "offline", status since)
    status: dict[str, tuple[datetime, str, datetime]] = field(default_factory=dict)
    # (device_id, minute) -> where its rollup rows start in ``rollups`` and how many there are
    _minutes: dict[tuple[str, datetime], tuple[int, int]] = field(default_factory=dict)
    _merged: dict[tuple[str, datetime], dict[tuple[str, str], int]] = field(default_factory=dict)

    def add(self, time: datetime, device_id: str, seq: int | None, values: Sequence[tuple[str, str, float]]) -> None:
        """One message's readings, and the 1-minute rollups ``ingest.rollups.refresh`` would compute from them."""
        self.measurements.extend((time, device_id, metric, part, value, seq) for metric, part, value in values)
        bucket = time.replace(second=0, microsecond=0)
        at = self._minutes.get((device_id, bucket))
        if at is None:
            self._minutes[(device_id, bucket)] = (len(self.rollups), len(values))
            self.rollups.extend(
                (bucket, device_id, metric, part, 1, value, value, value) for metric, part, value in values
            )
            return
        # A second message in the same minute (devices reporting more often, or a skewed clock).
        index = self._merged.get((device_id, bucket))
        if index is None:
            start, count = at
            index = {(r[2], r[3]): start + i for i, r in enumerate(self.rollups[start : start + count])}
            self._merged[(device_id, bucket)] = index
        for metric, part, value in values:
            i = index.get((metric, part))
            if i is None:
                index[(metric, part)] = len(self.rollups)
                self.rollups.append((bucket, device_id, metric, part, 1, value, value, value))
                continue
            b, d, m, p, n, total, low, high = self.rollups[i]
            self.rollups[i] = (b, d, m, p, n + 1, total + value, min(low, value), max(high, value))


async def unfilled(
    conn: asyncpg.Connection, spans: Iterable[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The stretches of each ``(start, end)`` span before its first and after its last stored reading.

    Whole minutes apart from the stored ones (a rollup minute has one writer); stretches under a minute are left out.
    """
    out = []
    minute = timedelta(minutes=1)
    for start, end in spans:
        row = await conn.fetchrow(SPAN_ROWS, start, end)
        if row["first"] is None:
            stretches = [(start, end)]
        else:
            first = row["first"].replace(second=0, microsecond=0)
            after_last = row["last"].replace(second=0, microsecond=0) + minute
            stretches = [(start, first), (max(start, after_last), end)]
        out += [(a, b) for a, b in stretches if b - a >= minute]
    return out


async def write(conn: asyncpg.Connection, history: History) -> int:
    """Write ``history`` in one transaction; returns the number of raw rows.

    The caller guarantees the stretch holds no rows yet (``unfilled``): plain COPY, no conflict handling.
    """
    async with conn.transaction():
        if history.measurements:
            await conn.copy_records_to_table("measurements", records=history.measurements, columns=MEASUREMENT_COLUMNS)
            await conn.copy_records_to_table("rollups_1m", records=history.rollups, columns=ROLLUP_COLUMNS)
        if history.events:
            await conn.executemany(INSERT_EVENT, history.events)
        if history.latest:
            await _merge_latest(conn, history.latest)
        if history.status:
            await _merge_status(conn, history.status)
    return len(history.measurements)


async def _merge_latest(conn: asyncpg.Connection, latest: dict[tuple[str, str, str], tuple[datetime, float]]) -> None:
    keys: Sequence[tuple[str, str, str]] = list(latest)
    await conn.execute(
        MERGE_LATEST,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [latest[k][0] for k in keys],
        [latest[k][1] for k in keys],
    )


async def _merge_status(conn: asyncpg.Connection, status: dict[str, tuple[datetime, str, datetime]]) -> None:
    ids = list(status)
    await conn.execute(
        MERGE_DEVICES, ids, [status[d][0] for d in ids], [status[d][1] for d in ids], [status[d][2] for d in ids]
    )

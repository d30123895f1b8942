"""History of one device metric: buckets of a minute or more from ``rollups_1m``, finer ones from raw rows."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dashboards.encoding import iso, number

logger = logging.getLogger(__name__)

BUCKET_RE = re.compile(r"^(?P<n>[1-9][0-9]{0,4})(?P<unit>s|m|h|d)$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_RAW_RANGE = timedelta(days=7)
MAX_ROLLUP_RANGE = timedelta(days=400)
MAX_POINTS = 50_000
# (largest range, default bucket): the first match wins.
DEFAULT_BUCKETS = (
    (timedelta(hours=3), "raw"),
    (timedelta(days=2), "1m"),
    (timedelta(days=14), "15m"),
    (timedelta(days=90), "1h"),
)

# Rollups are complete up to the oldest minute still marked dirty (or the current, open minute); from there
# on the raw rows stand in, so a chart reaches the last reading instead of stopping a minute or two short.
ROLLUP_SQL = """
WITH settled AS (
    SELECT LEAST(date_trunc('minute', now()), (SELECT min(bucket) FROM rollup_dirty)) AS upto
)
SELECT {bucket} AS t, sum(sum) / nullif(sum(count), 0) AS avg, min(min) AS min, max(max) AS max,
       sum(count)::bigint AS count
FROM (
    SELECT bucket, sum, count, min, max FROM rollups_1m, settled
    WHERE device_id = $2 AND metric = $3 AND part = $4 AND bucket >= $5 AND bucket < LEAST($6, settled.upto)
    UNION ALL
    SELECT time, value, 1, value, value FROM measurements, settled
    WHERE device_id = $2 AND metric = $3 AND part = $4 AND time >= GREATEST($5, settled.upto) AND time < $6
) AS combined
GROUP BY 1 ORDER BY 1
"""
RAW_BUCKET_SQL = """
SELECT {bucket} AS t, avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS count
FROM measurements
WHERE device_id = $2 AND metric = $3 AND part = $4 AND time >= $5 AND time < $6
GROUP BY 1 ORDER BY 1
"""
RAW_SQL = """
SELECT time AS t, value AS avg, value AS min, value AS max, 1 AS count
FROM measurements
WHERE device_id = $1 AND metric = $2 AND part = $3 AND time >= $4 AND time < $5
ORDER BY time LIMIT $6
"""

# Buckets as the API sends them, made by PostgreSQL: a bucket starts on a whole second, so its ISO time has no
# fraction (what dashboards.encoding.iso prints for it), and NaN or an infinity becomes NULL (encoding.number).
# Python then only pairs names with values: a zone page asks for tens of thousands of points at once.
POINTS_SQL = """
SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), {finite}, count
FROM ({{buckets}}) AS buckets ORDER BY buckets.t
""".format(
    finite=", ".join(
        f"CASE WHEN {c} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {c} END" for c in ("avg", "min", "max")
    )
)
POINT_KEYS = ("t", "avg", "min", "max", "count")


class ReadingsError(ValueError):
    """A readings query the API refuses; ``code`` is the error code clients see."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Query:
    """A validated readings query."""

    device_id: str
    metric: str
    part: str
    start: datetime
    end: datetime
    bucket: str
    seconds: int | None  # None for raw

    @property
    def source(self) -> str:
        """``rollup_1m`` for whole-minute buckets, else ``raw``."""
        return "rollup_1m" if self.seconds is not None and self.seconds % 60 == 0 else "raw"


def default_bucket(span: timedelta) -> str:
    """The bucket chosen when the client names none."""
    for limit, bucket in DEFAULT_BUCKETS:
        if span <= limit:
            return bucket
    return "1d"


def make_query(device_id: str, metric: str, part: str, start: datetime, end: datetime, bucket: str | None) -> Query:
    """Validate the range and bucket; raises ReadingsError."""
    if end <= start:
        raise ReadingsError("bad_request", "'from' must be before 'to'")
    span = end - start
    bucket = bucket or default_bucket(span)
    if bucket == "raw":
        seconds = None
    else:
        m = BUCKET_RE.match(bucket)
        if m is None:
            raise ReadingsError("bad_request", f"bucket {bucket!r} must be 'raw' or like 10s, 1m, 5m, 1h, 1d")
        seconds = int(m["n"]) * UNITS[m["unit"]]
    query = Query(device_id, metric, part, start, end, bucket, seconds)
    limit = MAX_ROLLUP_RANGE if query.source == "rollup_1m" else MAX_RAW_RANGE
    if span > limit:
        raise ReadingsError(
            "range_too_large",
            f"{query.source} readings cover at most {limit.days} days per request; "
            "narrow the range or use a larger bucket",
        )
    if seconds is not None and span.total_seconds() / seconds > MAX_POINTS:
        raise ReadingsError("range_too_large", f"more than {MAX_POINTS} buckets; use a larger bucket")
    return query


def _bucket_expr(column: str, timescale: bool) -> str:
    if timescale:
        return f"time_bucket($1::interval, {column})"
    return f"date_bin($1::interval, {column}, timestamptz '1970-01-01')"


async def fetch(conn: asyncpg.Connection, q: Query, *, timescale: bool) -> list[dict[str, Any]]:
    """The points of a readings query: ``{"t", "avg", "min", "max", "count"}``."""
    if q.seconds is None:
        rows = await conn.fetch(RAW_SQL, q.device_id, q.metric, q.part, q.start, q.end, MAX_POINTS + 1)
        if len(rows) > MAX_POINTS:
            raise ReadingsError("range_too_large", f"more than {MAX_POINTS} raw readings; use a bucket")
        return [
            {"t": iso(r["t"]), "avg": number(r["avg"]), "min": number(r["min"]), "max": number(r["max"]), "count": 1}
            for r in rows
        ]
    template = ROLLUP_SQL if q.source == "rollup_1m" else RAW_BUCKET_SQL
    column = "bucket" if q.source == "rollup_1m" else "time"
    sql = POINTS_SQL.format(buckets=template.format(bucket=_bucket_expr(column, timescale)))
    rows = await conn.fetch(sql, timedelta(seconds=q.seconds), q.device_id, q.metric, q.part, q.start, q.end)
    return [dict(zip(POINT_KEYS, r, strict=True)) for r in rows]

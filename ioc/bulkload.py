"""History in bulk: rows for a stretch of time no device has reported in, written as the ingest would leave them.

The ingest writes raw rows, marks their minutes dirty and recomputes the 1-minute rollups later
(ingest/writer.py, ingest/rollups.py). A bulk load covers whole closed minutes nobody else writes, so
it COPYs the raw rows and their finished rollups in one transaction and marks nothing dirty: readers
find the same tables filled the same way. Rows arrive as whole series (one device, metric and part over a
stretch, as numpy arrays), are encoded to PostgreSQL's binary COPY format with numpy and sent in the order
of the tables' unique keys, which is the cheapest order for the database to index. Latest values and device
status move only forward in time (the ingest's own guards, ioc.merges), so history never overrides a newer
reading and never looks current.
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

from ioc.merges import MERGE_LATEST_ARRAYS, UPDATE_DEVICES

logger = logging.getLogger(__name__)

# time, device_id, type, severity, confidence, attrs
EventRow = tuple[datetime, str, str, str, float, dict[str, object]]
MEASUREMENT_COLUMNS = ["time", "device_id", "metric", "part", "value", "seq"]
ROLLUP_COLUMNS = ["bucket", "device_id", "metric", "part", "count", "sum", "min", "max"]
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC, the zero of PostgreSQL's binary timestamps
MINUTE_US = 60_000_000
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)

# An event is stored as if received when it happened.
INSERT_EVENT = """
INSERT INTO events (time, device_id, type, severity, confidence, attrs, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $1) ON CONFLICT DO NOTHING
"""
SPAN_ROWS = 'SELECT min(time) AS "first", max(time) AS "last" FROM measurements WHERE time >= $1 AND time < $2'


def _text(name: str, value: str) -> list[tuple[str, str]]:
    """A text column of a binary COPY row: its length, then its bytes (nothing for an empty string)."""
    size = len(value.encode())
    return [(f"{name}_n", ">i4")] + ([(name, f"S{size}")] if size else [])


def _rows(key: tuple[str, str, str], ncols: int, tail: list[tuple[str, str]], n: int) -> np.ndarray:
    """An array of ``n`` binary COPY rows: (time, device_id, metric, part, ...tail columns), ``ncols`` in all."""
    device_id, metric, part = key
    head = [("t_n", ">i4"), ("t", ">i8")]
    dtype = [("ncols", ">i2"), *head, *_text("d", device_id), *_text("m", metric), *_text("p", part), *tail]
    rows = np.empty(n, dtype=dtype)
    rows["ncols"] = ncols
    for name, value in (("d", device_id), ("m", metric), ("p", part)):
        rows[f"{name}_n"] = len(value.encode())
        if value:
            rows[name] = value.encode()
    return rows


def encode_measurements(key: tuple[str, str, str], us: np.ndarray, values: np.ndarray, seq: np.ndarray | None) -> bytes:
    """Binary COPY rows of ``measurements`` for one series (times in epoch microseconds)."""
    tail = [("v_n", ">i4"), ("v", ">f8"), ("s_n", ">i4")] + ([("s", ">i8")] if seq is not None else [])
    rows = _rows(key, len(MEASUREMENT_COLUMNS), tail, len(us))
    rows["t_n"], rows["t"] = 8, us - PG_EPOCH_US
    rows["v_n"], rows["v"] = 8, values
    if seq is None:
        rows["s_n"] = -1
    else:
        rows["s_n"], rows["s"] = 8, seq
    return rows.tobytes()


def encode_rollups(key: tuple[str, str, str], us: np.ndarray, values: np.ndarray) -> tuple[bytes, int]:
    """Binary COPY rows of ``rollups_1m`` for one series sorted by time: what ``ingest.rollups.refresh``
    computes from its raw rows. Returns the rows and how many there are."""
    buckets = us // MINUTE_US * MINUTE_US
    starts = np.flatnonzero(np.diff(buckets, prepend=buckets[0] - 1))
    if len(starts) == len(us):  # one reading a minute: nothing to combine
        count, total, low, high = np.ones(len(us)), values, values, values
    else:
        count = np.diff(np.append(starts, len(us)))
        total = np.add.reduceat(values, starts)
        low, high = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)
    tail = [("c_n", ">i4"), ("c", ">i4")] + [(f"{c}{x}", f) for c in "sab" for x, f in (("_n", ">i4"), ("", ">f8"))]
    rows = _rows(key, len(ROLLUP_COLUMNS), tail, len(starts))
    rows["t_n"], rows["t"] = 8, buckets[starts] - PG_EPOCH_US
    rows["c_n"], rows["c"] = 4, count
    for name, column in (("s", total), ("a", low), ("b", high)):
        rows[f"{name}_n"], rows[name] = 8, column
    return rows.tobytes(), len(starts)


@dataclass
class History:
    """The rows of one stretch of time: raw readings and their 1-minute rollups (binary COPY rows, by key),
    events, and the end state."""

    rows: int = 0
    rollup_rows: int = 0
    events: list[EventRow] = field(default_factory=list)
    # (device_id, metric, part) -> (time, value) of the newest reading
    latest: dict[tuple[str, str, str], tuple[datetime, float]] = field(default_factory=dict)
    # device_id -> (last heard at, "online" | "offline")
    status: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    _series: list[tuple[tuple[str, str, str], bytes, bytes]] = field(default_factory=list)
    _arrays: list[tuple[tuple[str, str, str], np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, key: tuple[str, str, str], us: np.ndarray, values: np.ndarray, seq: np.ndarray | None = None) -> None:
        """One series of readings (times ascending, in epoch microseconds) and its rollups."""
        if not len(us):
            return
        rollups, n = encode_rollups(key, us, values)
        self._series.append((key, encode_measurements(key, us, values, seq), rollups))
        self._arrays.append((key, us, values))
        self.rows += len(us)
        self.rollup_rows += n

    def readings(self) -> Iterator[tuple[tuple[str, str, str], float, float]]:
        """Every raw row as (key, epoch seconds, value), series by series."""
        for key, us, values in self._arrays:
            for t, v in zip(us.tolist(), values.tolist(), strict=True):
                yield key, t / 1e6, v

    def copy_data(self) -> tuple[bytes, bytes]:
        """The binary COPY streams of ``measurements`` and ``rollups_1m``, rows in the order of their keys."""
        ordered = sorted(self._series, key=lambda s: s[0])
        return (
            COPY_HEADER + b"".join(s[1] for s in ordered) + COPY_TRAILER,
            COPY_HEADER + b"".join(s[2] for s in ordered) + COPY_TRAILER,
        )


def to_datetime(us: int) -> datetime:
    """Epoch microseconds as an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


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
    The commit does not wait for its WAL to reach the disk (``synchronous_commit = off``, this transaction
    only): a crash may lose the last few spans written, whole, never half of one, and the next run finds
    them unfilled and writes them again.
    """
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        if history.rows:
            measurements, rollups = history.copy_data()
            await _copy(conn, "measurements", MEASUREMENT_COLUMNS, measurements)
            await _copy(conn, "rollups_1m", ROLLUP_COLUMNS, rollups)
        if history.events:
            await conn.executemany(INSERT_EVENT, history.events)
        if history.latest:
            keys: Sequence[tuple[str, str, str]] = sorted(history.latest)
            await conn.execute(
                MERGE_LATEST_ARRAYS,
                *([k[i] for k in keys] for i in range(3)),
                [history.latest[k][0] for k in keys],
                [history.latest[k][1] for k in keys],
            )
        if history.status:
            ids = sorted(history.status)
            await conn.execute(
                UPDATE_DEVICES, ids, [history.status[d][0] for d in ids], [history.status[d][1] for d in ids]
            )
    return history.rows


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], data: bytes) -> Any:
    return await conn.copy_to_table(table, source=io.BytesIO(data), columns=columns, format="binary")

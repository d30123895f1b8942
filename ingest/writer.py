"""Where records become rows: one transaction per batch, COPY into staging, idempotent inserts, NOTIFY.

A redelivered or duplicated message maps to the same (device_id, metric, part, time) key and is
dropped by ON CONFLICT DO NOTHING, so at-least-once delivery stores every reading exactly once.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from ingest.quarantine import NO_DEVICE, TOPIC_CHARS
from ioc.db import NOTIFY_CHANNEL, commit_notices
from ioc.merges import UPDATE_DEVICES, merge_latest
from ioc.records import Event, Measurement, Record, Snapshot, StatusChange

logger = logging.getLogger(__name__)

STAGING = "_ingest_measurements"
STAGING_LATEST = "_ingest_latest"
CREATE_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGING} (
  time timestamptz NOT NULL, device_id text NOT NULL, metric text NOT NULL, part text NOT NULL,
  value double precision NOT NULL, seq bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS {STAGING_LATEST} (
  device_id text NOT NULL, metric text NOT NULL, part text NOT NULL, time timestamptz NOT NULL,
  value double precision NOT NULL
) ON COMMIT DELETE ROWS
"""
# Raw rows and the dirty rollup minutes in one statement.
MERGE_MEASUREMENTS = f"""
WITH ins AS (
  INSERT INTO measurements (time, device_id, metric, part, value, seq)
  SELECT time, device_id, metric, part, value, seq FROM {STAGING}
  ON CONFLICT DO NOTHING
  RETURNING time
), dirty AS (
  INSERT INTO rollup_dirty (bucket, worker_id)
  SELECT DISTINCT date_trunc('minute', time), $1::text FROM ins
  ON CONFLICT (bucket, worker_id) DO UPDATE SET worker_id = EXCLUDED.worker_id
)
SELECT count(*) FROM ins
"""
MERGE_LATEST = merge_latest(f"SELECT device_id, metric, part, time, value FROM {STAGING_LATEST}")
INSERT_EVENT = """
INSERT INTO events (time, device_id, type, severity, confidence, attrs) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
"""
UPSERT_SNAPSHOT = """
INSERT INTO snapshots AS s (device_id, time, content_type, data) VALUES ($1, $2, $3, $4)
ON CONFLICT (device_id) DO UPDATE SET time = EXCLUDED.time, content_type = EXCLUDED.content_type, data = EXCLUDED.data
WHERE s.time <= EXCLUDED.time
"""
QUARANTINE_COLUMNS = ["received_at", "topic", "payload", "payload_bytes", "reason", "detail", "device_id"]
# Messages past a device's quarantine sample budget (ingest.quarantine): one row per device, reason and window.
ADD_OVERFLOW = """
INSERT INTO quarantine_overflow AS q (device_id, reason, window_start, messages, bytes, first_at, last_at, last_topic)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::timestamptz[],
                     $7::timestamptz[], $8::text[])
ON CONFLICT (device_id, reason, window_start) DO UPDATE SET
  messages = q.messages + EXCLUDED.messages,
  bytes = q.bytes + EXCLUDED.bytes,
  first_at = LEAST(q.first_at, EXCLUDED.first_at),
  last_at = GREATEST(q.last_at, EXCLUDED.last_at),
  last_topic = CASE WHEN EXCLUDED.last_at >= q.last_at THEN EXCLUDED.last_topic ELSE q.last_topic END
"""
DEVICE_WRITE_EVERY_S = 5.0  # last_seen is refreshed at most this often per device (status changes at once)
# A key's latest value is written at most this often; newer values wait (and are flushed by a timer).
# Field devices report every 10-60 s, so only load tests and chatty devices are ever held back.
LATEST_EVERY_S = 0.5
LatestKey = tuple[str, str, str]
LatestRow = tuple[str, str, str, datetime, float]  # device_id, metric, part, time, value


@dataclass(slots=True)
class Overflow:
    """Quarantined messages of one device, reason and window past the sample budget: counted, not kept."""

    messages: int
    bytes: int
    first_at: datetime
    last_at: datetime
    last_topic: str


@dataclass
class Batch:
    """What one transaction writes: decoded records and quarantined messages."""

    measurements: list[tuple[datetime, str, str, str, float, int | None]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    # device_id -> (seen at, status): data means online; the last status message wins.
    seen: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    quarantine: list[tuple[datetime, str, bytes, int, str, str, str | None]] = field(default_factory=list)
    overflow: dict[tuple[str, str, datetime], Overflow] = field(default_factory=dict)  # (device, reason, window)
    kinds: set[str] = field(default_factory=set)
    # Devices that sent an explicit status (or whose will fired): always written, never throttled.
    announced: set[str] = field(default_factory=set)

    def add(self, records: list[Record], received_at: datetime, kind: str) -> None:
        """Add the records of one accepted message (validated: hardware claims are already dropped)."""
        self.kinds.add(kind)
        for r in records:
            if type(r) is Measurement:
                self.measurements.append((r.time, r.device_id, r.metric, r.part, r.value, r.seq))
                self.seen[r.device_id] = (received_at, "online")
            elif type(r) is StatusChange:
                self.seen[r.device_id] = (received_at, "online" if r.online else "offline")
                self.announced.add(r.device_id)
            elif type(r) is Event:
                self.events.append(r)
                self.seen[r.device_id] = (received_at, "online")
            elif type(r) is Snapshot:
                prev = self.snapshots.get(r.device_id)
                if prev is None or prev.time <= r.time:
                    self.snapshots[r.device_id] = r
                self.seen[r.device_id] = (received_at, "online")

    def reject(
        self,
        received_at: datetime,
        topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        device_id: str | None,
        sample_bytes: int,
    ) -> None:
        """Add a quarantined message kept as a sample: its payload cut to ``sample_bytes``, its size noted."""
        sample = payload[:sample_bytes]
        self.quarantine.append(
            (received_at, topic[:TOPIC_CHARS], sample, len(payload), reason, detail[:500], device_id)
        )

    def count(
        self, window: datetime, received_at: datetime, topic: str, size: int, reason: str, device_id: str | None
    ) -> None:
        """Add a quarantined message past its device's sample budget: only counted."""
        key = (device_id or NO_DEVICE, reason, window)
        row = self.overflow.get(key)
        if row is None:
            self.overflow[key] = Overflow(1, size, received_at, received_at, topic[:TOPIC_CHARS])
            return
        row.messages += 1
        row.bytes += size
        row.first_at = min(row.first_at, received_at)
        if received_at >= row.last_at:
            row.last_at, row.last_topic = received_at, topic[:TOPIC_CHARS]

    @property
    def rejected(self) -> int:
        """Quarantined messages in the batch, kept or only counted."""
        return len(self.quarantine) + sum(row.messages for row in self.overflow.values())

    def __len__(self) -> int:
        return len(self.measurements) + len(self.events) + len(self.snapshots) + len(self.seen) + self.rejected


@dataclass
class WriteResult:
    """What a committed batch changed."""

    stored: int
    duplicates: int
    events: int
    quarantined: int
    commit_s: float


@dataclass
class Throttles:
    """What the writers of one worker have written recently (shared: they run on one event loop)."""

    device_written: dict[str, tuple[float, str]] = field(default_factory=dict)
    latest_written: dict[LatestKey, float] = field(default_factory=dict)
    latest_pending: dict[LatestKey, tuple[datetime, float]] = field(default_factory=dict)
    latest_due: list[tuple[float, LatestKey]] = field(default_factory=list)  # heap: when each pending key may go


class Writer:
    """Writes batches over one dedicated connection."""

    def __init__(self, conn: asyncpg.Connection, worker_id: str, throttles: Throttles | None = None) -> None:
        self.conn = conn
        self.worker_id = worker_id
        shared = throttles or Throttles()
        self._device_written = shared.device_written
        self._latest_written = shared.latest_written
        self._latest_pending = shared.latest_pending
        self._latest_due = shared.latest_due

    async def prepare(self) -> None:
        """Create the session's staging table."""
        await self.conn.execute(CREATE_STAGING)

    def _device_rows(self, batch: Batch) -> tuple[list[str], list[datetime], list[str]]:
        now = time.monotonic()
        ids: list[str] = []
        seen: list[datetime] = []
        status: list[str] = []
        for device_id, (at, st) in batch.seen.items():
            last = self._device_written.get(device_id)
            # Another worker may have written a different status since: explicit statuses always go through.
            if device_id in batch.announced or last is None or last[1] != st or now - last[0] >= DEVICE_WRITE_EVERY_S:
                ids.append(device_id)
                seen.append(at)
                status.append(st)
        return ids, seen, status

    def _take_latest(self, batch: Batch) -> tuple[list[LatestRow], list[float | None], float]:
        """The newest value per key in the batch (plus held-back ones that are due), throttled per key.

        Pending keys wait in a heap ordered by the time they may next be written, so a batch costs
        O(its rows + due keys), not O(every key ever seen). The rows taken are marked written at once (so
        a concurrent writer does not take them too); ``_give_back_latest`` undoes that when the commit fails.
        Returns the rows, each key's previous write time, and the time they were taken.
        """
        pending, written, due = self._latest_pending, self._latest_written, self._latest_due
        for t, device_id, metric, part, value, _ in batch.measurements:
            key = (device_id, metric, part)
            held = pending.get(key)
            if held is None:
                pending[key] = (t, value)
                heapq.heappush(due, (written.get(key, -LATEST_EVERY_S) + LATEST_EVERY_S, key))
            elif held[0] <= t:
                pending[key] = (t, value)
        now = time.monotonic()
        rows: list[LatestRow] = []
        previous: list[float | None] = []
        while due and due[0][0] <= now:
            _, key = heapq.heappop(due)
            t, value = pending.pop(key)
            previous.append(written.get(key))
            written[key] = now
            rows.append((key[0], key[1], key[2], t, value))
        return rows, previous, now

    def _give_back_latest(self, rows: list[LatestRow], previous: list[float | None], taken_at: float) -> None:
        """After a failed commit: the values taken for it wait again, due when they were before."""
        pending, written, due = self._latest_pending, self._latest_written, self._latest_due
        for (device_id, metric, part, t, value), before in zip(rows, previous, strict=True):
            key = (device_id, metric, part)
            if written.get(key) == taken_at:  # not written again meanwhile by another writer
                if before is None:
                    del written[key]
                else:
                    written[key] = before
            held = pending.get(key)
            if held is None:
                pending[key] = (t, value)
                heapq.heappush(due, (written.get(key, -LATEST_EVERY_S) + LATEST_EVERY_S, key))
            elif held[0] < t:  # a newer batch queued the key again (already in the heap): keep the newer value
                pending[key] = (t, value)

    @property
    def latest_pending(self) -> bool:
        """True when some latest values are held back by the throttle."""
        return bool(self._latest_pending)

    async def write(self, batch: Batch) -> WriteResult:
        """Commit ``batch`` in one transaction and notify listeners; raises on database errors."""
        started = time.perf_counter()
        ids, seen, status = self._device_rows(batch)
        latest, previous, taken_at = self._take_latest(batch)
        try:
            stored = await self._commit(batch, latest, ids, seen, status)
        except BaseException:
            self._give_back_latest(latest, previous, taken_at)
            raise
        now = time.monotonic()
        for device_id, st in zip(ids, status, strict=True):
            self._device_written[device_id] = (now, st)
        return WriteResult(
            stored,
            len(batch.measurements) - stored,
            len(batch.events),
            batch.rejected,
            time.perf_counter() - started,
        )

    async def _commit(
        self, batch: Batch, latest: list[LatestRow], ids: list[str], seen: list[datetime], status: list[str]
    ) -> int:
        """The transaction of one batch; returns the measurement rows stored (not duplicates)."""
        stored = 0
        async with self.conn.transaction():
            if batch.measurements:
                await self.conn.copy_records_to_table(
                    STAGING, records=batch.measurements, columns=["time", "device_id", "metric", "part", "value", "seq"]
                )
                stored = await self.conn.fetchval(MERGE_MEASUREMENTS, self.worker_id)
            if latest:
                await self.conn.copy_records_to_table(
                    STAGING_LATEST, records=latest, columns=["device_id", "metric", "part", "time", "value"]
                )
                await self.conn.execute(MERGE_LATEST)
            if batch.events:
                await self.conn.executemany(
                    INSERT_EVENT,
                    [(e.time, e.device_id, e.type, e.severity, e.confidence, e.attrs) for e in batch.events],
                )
            if batch.snapshots:
                await self.conn.executemany(
                    UPSERT_SNAPSHOT, [(s.device_id, s.time, s.content_type, s.data) for s in batch.snapshots.values()]
                )
            if ids:
                await self.conn.execute(UPDATE_DEVICES, ids, seen, status)
            if batch.quarantine:
                await self.conn.copy_records_to_table(
                    "quarantine", records=batch.quarantine, columns=QUARANTINE_COLUMNS
                )
            if batch.overflow:
                # Sorted: concurrent writers then lock the rows they share in one order (no deadlock).
                keys = sorted(batch.overflow)
                rows = [batch.overflow[key] for key in keys]
                await self.conn.execute(
                    ADD_OVERFLOW,
                    *([key[i] for key in keys] for i in range(3)),
                    [r.messages for r in rows],
                    [r.bytes for r in rows],
                    [r.first_at for r in rows],
                    [r.last_at for r in rows],
                    [r.last_topic for r in rows],
                )
            if stored or latest or batch.events or batch.snapshots or ids:
                for notice in self._notices(batch, stored, latest):
                    await self.conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, notice)
        return stored

    def _notices(self, batch: Batch, stored: int, latest: list[LatestRow]) -> list[str]:
        """The commit notices of a batch: its counts and every device whose state changed (data, status,
        or latest values released by the throttle)."""
        head = {
            "w": self.worker_id,
            "t": datetime.now(UTC).isoformat(),
            "rows": stored,
            "events": len(batch.events),
            "status": len(batch.seen),
            "kinds": sorted(batch.kinds),
        }
        return commit_notices(head, sorted(set(batch.seen).union(row[0] for row in latest)))

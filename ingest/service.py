"""``ioc ingest``: broker -> bridge -> decoders -> validation -> writer (COPY) -> TimescaleDB -> NOTIFY.

Two tasks form the hot path: the collector takes messages from the bridge, decodes and validates
them into items; the writer commits each batch and only then acks it to the broker. When the
database is unreachable the writer appends the raw messages to the on-disk spool (fsync, then ack)
and replays them, in order, when it returns. Housekeeping runs beside: heartbeat, rollups, retention,
registry refresh (stale devices are marked once, by the alert leader of `ioc serve`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from ingest import metrics
from ingest.bridge import Bridge
from ingest.decoders import SUBSCRIPTIONS, Limits, decode, route, topic_device
from ingest.quarantine import QuarantineBudget, QuarantinePolicy
from ingest.ratelimit import RateLimiter
from ingest.rollups import apply_retention, refresh
from ingest.spool import RawMessage, Spool, SpoolFull
from ingest.validation import DeviceInfo, validate
from ingest.writer import Batch, Throttles, Writer, WriteResult
from ioc.db import describe, init_connection
from ioc.errors import PayloadError
from ioc.kinds import load_kinds
from ioc.reasons import Reason
from ioc.records import Record
from ioc.settings import Settings

logger = logging.getLogger(__name__)

REGISTRY_CHANNEL = "ioc_registry"
GATHER_POLL_S = 0.002
UNKNOWN_TTL_S = 10.0  # an id found in neither the registry nor the database is not looked up again for this long
LOOKUPS_PER_S = 50  # how often a growing batch checks for an idle writer
# Errors meaning "the database is not there right now" (spool and retry), as opposed to a bad row.
# InternalClientError: the server's shutdown message reached an idle connection, which is now unusable.
DB_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InternalClientError,
)
HEARTBEAT = """
INSERT INTO ingest_workers (worker_id, started_at, heartbeat_at, stats) VALUES ($1, $2, now(), $3)
ON CONFLICT (worker_id) DO UPDATE SET started_at = EXCLUDED.started_at, heartbeat_at = now(), stats = EXCLUDED.stats
"""


@dataclass(slots=True)
class Slot:
    """One writer's database connection (several writers commit batches concurrently)."""

    index: int
    conn: asyncpg.Connection | None = None
    writer: Writer | None = None
    next_connect: float = 0.0
    backoff: float = 0.5


class AckSequencer:
    """Acknowledges batches in the order they were received, whichever writer finishes first.

    MQTT wants PUBACKs in receive order; batches are numbered by the collector and released in sequence.
    """

    def __init__(self, ack: Callable[[list[RawMessage]], None]) -> None:
        self._ack = ack
        self._issued = 0
        self._next = 0
        self._done: dict[int, list[RawMessage]] = {}
        self._changed = asyncio.Condition()

    def number(self) -> int:
        """The next batch number."""
        self._issued += 1
        return self._issued - 1

    async def turn(self, seq: int) -> None:
        """Wait until every batch before ``seq`` is complete."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._next >= seq)

    async def complete(self, seq: int, raws: list[RawMessage]) -> None:
        """Mark ``seq`` committed (or spooled) and ack every batch now in order."""
        async with self._changed:
            self._done[seq] = raws
            while self._next in self._done:
                self._ack(self._done.pop(self._next))
                self._next += 1
            self._changed.notify_all()


@dataclass(slots=True)
class Item:
    """One message after decoding: its records, or why it is quarantined."""

    raw: RawMessage
    records: list[Record] | None
    received: datetime
    kind: str = ""
    reason: Reason | None = None
    detail: str = ""
    device_id: str | None = None
    sampled: bool = True  # a quarantined message within its device's budget is kept, else only counted


def to_batch(items: list[Item], policy: QuarantinePolicy) -> Batch:
    """Gather items into what one transaction writes."""
    batch = Batch()
    for it in items:
        if it.records is not None:
            batch.add(it.records, it.received, it.kind)
            continue
        assert it.reason is not None
        raw = it.raw
        if it.sampled:
            batch.reject(it.received, raw.topic, raw.payload, it.reason, it.detail, it.device_id, policy.sample_bytes)
        else:
            window = datetime.fromtimestamp(policy.window(raw.received_at), UTC)
            batch.count(window, it.received, raw.topic, len(raw.payload), it.reason, it.device_id)
    return batch


class IngestService:
    """One ingest worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker_id = settings.ingest_client_id
        self.kinds = load_kinds(settings.kinds_file)
        self.limits = Limits.from_settings(settings)
        self.ratelimiter = RateLimiter.from_settings(settings)
        self.quarantine = QuarantineBudget(QuarantinePolicy.from_settings(settings))
        self.spool = Spool(settings.spool_dir(), settings.ingest_spool_max_bytes)
        self.url = settings.resolved_database_url()
        self.devices: dict[str, DeviceInfo] = {}
        self._unknown: dict[str, float] = {}  # device id -> monotonic time until which it is known unknown
        self._lookups = RateLimiter(LOOKUPS_PER_S, int(LOOKUPS_PER_S))  # one bucket, key "lookup"
        self.slots = [Slot(i) for i in range(settings.ingest_writers)]
        self.batches: asyncio.Queue[tuple[int, list[Item]]] = asyncio.Queue(maxsize=settings.ingest_writers + 1)
        self.acks = AckSequencer(self._ack)
        self.throttles = Throttles()
        self._spool_lock = asyncio.Lock()
        self._aux_lock = asyncio.Lock()
        self._aux_conn: asyncpg.Connection | None = None
        self.started_at = datetime.now(UTC)
        self.stats = {"received": 0, "stored": 0, "duplicates": 0, "quarantined": 0, "spooled": 0, "replayed": 0}
        self.bridge: Bridge | None = None
        self._writing = 0
        self._window = {"batches": 0, "messages": 0, "commit_s": 0.0, "decode_s": 0.0, "started": time.monotonic()}

    # --- database connections --------------------------------------------------------------------
    async def ensure_db(self, slot: Slot) -> bool:
        """True when ``slot``'s writer connection is usable; reconnects with backoff otherwise."""
        if slot.conn is not None and not slot.conn.is_closed():
            return True
        if time.monotonic() < slot.next_connect:
            return False
        try:
            conn = await asyncpg.connect(self.url, timeout=3, command_timeout=60)
            await init_connection(conn)
            writer = Writer(conn, self.worker_id, self.throttles)
            await writer.prepare()
            await self.load_registry(conn)
        except DB_DOWN as exc:
            slot.next_connect = time.monotonic() + slot.backoff
            slot.backoff = min(slot.backoff * 2, 5.0)
            metrics.DB_UP.set(0)
            logger.warning("database unavailable (%s): spooling to %s", exc, self.spool.directory)
            return False
        slot.conn, slot.writer, slot.backoff = conn, writer, 0.5
        metrics.DB_UP.set(1)
        logger.info("database connected", extra={"database": describe(self.url), "writer": slot.index})
        return True

    def db_lost(self, slot: Slot, exc: BaseException) -> None:
        """Forget a writer connection after a connection-level failure."""
        logger.warning("database connection lost (%s): spooling", exc)
        metrics.DB_UP.set(0)
        if slot.conn is not None:
            slot.conn.terminate()
        slot.conn = slot.writer = None
        slot.next_connect = time.monotonic() + slot.backoff

    async def aux(self) -> asyncpg.Connection:
        """The connection for occasional work beside the writers (registry reloads, auto-registration)."""
        async with self._aux_lock:
            if self._aux_conn is None or self._aux_conn.is_closed():
                self._aux_conn = await asyncpg.connect(self.url, timeout=3)
                await init_connection(self._aux_conn)
            return self._aux_conn

    async def load_registry(self, conn: asyncpg.Connection) -> None:
        """Read the device registry into memory."""
        rows = await conn.fetch("SELECT device_id, kind, format, enabled FROM devices")
        self.devices = {r["device_id"]: DeviceInfo(r["device_id"], r["kind"], r["format"], r["enabled"]) for r in rows}
        self._unknown.clear()
        logger.info("device registry loaded", extra={"devices": len(self.devices)})

    # --- decoding --------------------------------------------------------------------------------
    async def decode_all(self, messages: list[RawMessage], *, rate_limit: bool) -> list[Item]:
        """Decode and validate messages into items (bad ones carry their quarantine reason)."""
        items: list[Item] = []
        settings, kinds, limits = self.settings, self.kinds, self.limits
        for m in messages:
            received = datetime.fromtimestamp(m.received_at, UTC)
            device_id = None
            try:
                r = route(m.topic, kinds)
                device_id = r.device_id
                if rate_limit and not self.ratelimiter.allow(device_id, m.received_at):
                    raise PayloadError(Reason.RATE_LIMITED, f"over {settings.ingest_rate_limit_per_s:g} msg/s")
                records = decode(r, m.payload, received, limits)
                device = self.devices.get(device_id)
                if device is None:
                    device = await self.lookup_device(device_id, r.kind_hint, r.format)
                records = validate(r, records, device, kinds, settings, received)
                assert device is not None
                items.append(Item(m, records, received, device.kind, device_id=device_id))
            except PayloadError as exc:
                if device_id is None and exc.reason is Reason.UNKNOWN_TOPIC:
                    device_id = topic_device(m.topic)
                items.append(self.rejected(m, received, exc.reason, exc.detail, device_id))
            except Exception as exc:  # a decoder bug must not stop the stream: quarantine and log it
                logger.exception("decoder failed on topic %s", m.topic)
                items.append(self.rejected(m, received, Reason.INTERNAL_ERROR, repr(exc)[:200], device_id))
        return items

    def rejected(self, raw: RawMessage, received: datetime, reason: Reason, detail: str, device_id: str | None) -> Item:
        """A quarantined message: kept as a sample while its device and reason are within budget, else counted."""
        sampled = self.quarantine.keep(device_id, reason, raw.received_at)
        return Item(raw, None, received, reason=reason, detail=detail, device_id=device_id, sampled=sampled)

    async def lookup_device(self, device_id: str, kind: str | None, fmt: str) -> DeviceInfo | None:
        """A device missing from the in-memory registry: registered a moment ago, auto-registered, or unknown.

        The registry reload after ``ioc devices import`` is asynchronous; a device that publishes at once
        must not be quarantined for it, so the database is asked. Unknown ids are remembered for
        UNKNOWN_TTL_S and lookups are capped per second: a stream of made-up ids cannot load the database.
        """
        now = time.monotonic()
        if self._unknown.get(device_id, 0.0) > now:
            return None
        if self.settings.ingest_auto_register:
            return await self.auto_register(device_id, kind, fmt)
        if not self._lookups.allow("lookup", now):
            return None
        try:
            conn = await self.aux()
            async with self._aux_lock:
                row = await conn.fetchrow("SELECT kind, format, enabled FROM devices WHERE device_id = $1", device_id)
        except (asyncpg.PostgresError, *DB_DOWN):
            return None
        if row is None:
            if len(self._unknown) >= 10_000:
                self._unknown.clear()
            self._unknown[device_id] = now + UNKNOWN_TTL_S
            return None
        info = DeviceInfo(device_id, row["kind"], row["format"], row["enabled"])
        self.devices[device_id] = info
        return info

    async def auto_register(self, device_id: str, kind: str | None, fmt: str) -> DeviceInfo | None:
        """Register an unknown device (setting IOC_INGEST_AUTO_REGISTER) when its kind is known."""
        if kind not in self.kinds:
            return None
        try:
            conn = await self.aux()
        except DB_DOWN:
            return None
        async with self._aux_lock:
            await conn.execute(
                "INSERT INTO devices (device_id, kind, format, name, metadata) VALUES ($1, $2, $3, $1, "
                "'{\"auto_registered\": true}'::jsonb) ON CONFLICT (device_id) DO NOTHING",
                device_id,
                kind,
                fmt,
            )
            row = await conn.fetchrow("SELECT kind, format, enabled FROM devices WHERE device_id = $1", device_id)
        info = DeviceInfo(device_id, row["kind"], row["format"], row["enabled"])
        self.devices[device_id] = info
        logger.info("auto-registered device %s as %s", device_id, kind)
        return info

    # --- hot path --------------------------------------------------------------------------------
    async def collect(self) -> None:
        """Take messages from the bridge in batches, decode them and queue them for the writers.

        Group commit: when a writer is idle the batch goes at once (low latency at low rates); while
        every writer is busy it keeps growing, up to IOC_INGEST_BATCH_MAX messages or
        IOC_INGEST_BATCH_WAIT_MS, so batches grow with the load and commits keep up.
        """
        assert self.bridge is not None
        loop = asyncio.get_running_loop()
        wait_s = self.settings.ingest_batch_wait_ms / 1000
        limit = self.settings.ingest_batch_max
        while True:
            await self.bridge.ready.wait()
            await asyncio.sleep(0)  # let the bridge read what has already arrived
            items = await self._decode_taken(limit)
            deadline = loop.time() + wait_s
            # Decode as messages come while every writer is busy, so the batch is ready the moment one frees.
            while len(items) < limit and not self._writer_idle() and loop.time() < deadline:
                await asyncio.sleep(GATHER_POLL_S)
                items += await self._decode_taken(limit - len(items))
            if items:
                await self.batches.put((self.acks.number(), items))

    async def _decode_taken(self, limit: int) -> list[Item]:
        """Decode up to ``limit`` buffered messages."""
        assert self.bridge is not None
        messages = self.bridge.take(limit)
        if not messages:
            return []
        self.stats["received"] += len(messages)
        metrics.RECEIVED.inc(len(messages))
        t0 = time.perf_counter()
        items = await self.decode_all(messages, rate_limit=True)
        self._window["decode_s"] += time.perf_counter() - t0
        return items

    def _writer_idle(self) -> bool:
        """True when a writer would take a batch now (none queued, one not writing)."""
        return self.batches.empty() and self._writing < len(self.slots)

    async def write_loop(self, slot: Slot) -> None:
        """One writer: commit batches (or spool them); writer 0 also replays the spool when the database is back."""
        while True:
            if self.spool and slot.index == 0 and await self.ensure_db(slot):
                async with self._spool_lock:
                    await self.replay_segment(slot)
                continue
            idle_work = bool(self.spool) or (slot.writer is not None and slot.writer.latest_pending)
            try:
                seq, items = await asyncio.wait_for(self.batches.get(), 0.5) if idle_work else await self.batches.get()
            except TimeoutError:
                if not self.spool:
                    await self.flush_latest(slot)
                continue
            self._writing += 1
            try:
                await self.handle(slot, seq, items)
            finally:
                self._writing -= 1

    async def flush_latest(self, slot: Slot) -> None:
        """Write latest values held back by the throttle (an empty batch)."""
        if await self.ensure_db(slot):
            try:
                await self.commit(slot, [])
            except DB_DOWN as exc:
                self.db_lost(slot, exc)

    async def handle(self, slot: Slot, seq: int, items: list[Item]) -> None:
        """Commit one batch and ack it in order; on a database outage spool it (in order), then ack."""
        raws = [it.raw for it in items]
        if not self.spool and await self.ensure_db(slot):
            try:
                await self.commit(slot, items)
                await self.acks.complete(seq, raws)
                return
            except DB_DOWN as exc:
                self.db_lost(slot, exc)
        await self.acks.turn(seq)  # every earlier batch is committed or spooled: the spool stays in order
        async with self._spool_lock:
            while True:
                try:
                    self.spool.append(raws)
                    break
                except SpoolFull as exc:
                    # Stop consuming: unacked messages stay queued at the broker for our session.
                    logger.error("%s: waiting for the database", exc)
                    while not await self.ensure_db(slot):  # noqa: ASYNC110 - polling a reconnect with backoff
                        await asyncio.sleep(1.0)
                    while self.spool:
                        await self.replay_segment(slot)
        self.stats["spooled"] += len(raws)
        metrics.SPOOLED.inc(len(raws))
        metrics.SPOOL_BYTES.set(self.spool.depth_bytes)
        await self.acks.complete(seq, raws)

    async def commit(self, slot: Slot, items: list[Item]) -> None:
        """Write items in one transaction; a batch the database rejects is retried item by item."""
        writer = slot.writer
        assert writer is not None
        policy = self.quarantine.policy
        try:
            result = await writer.write(to_batch(items, policy))
        except DB_DOWN:
            raise
        except asyncpg.PostgresError as exc:
            logger.error("database rejected a batch of %d messages (%s): retrying one by one", len(items), exc)
            for it in items:
                try:
                    self._count([it], await writer.write(to_batch([it], policy)))
                except DB_DOWN:
                    raise
                except asyncpg.PostgresError as one_exc:
                    detail = str(one_exc)[:200]
                    rejected = self.rejected(it.raw, it.received, Reason.DB_REJECTED, detail, it.device_id)
                    self._count([rejected], await writer.write(to_batch([rejected], policy)))
            return
        self._count(items, result)

    def _count(self, items: list[Item], result: WriteResult) -> None:
        """Count a committed batch: rows, quarantined messages by reason, lag, progress."""
        committed = time.time()
        observe = metrics.LAG_SECONDS.observe
        rejected: dict[Reason, int] = {}
        for it in items:
            if it.records:
                observe(committed - it.records[0].time.timestamp())
            elif it.reason is not None:
                rejected[it.reason] = rejected.get(it.reason, 0) + 1
        for reason, n in rejected.items():
            metrics.QUARANTINED.labels(reason).inc(n)
        messages = len(items)
        self.stats["stored"] += result.stored
        self.stats["duplicates"] += result.duplicates
        self.stats["quarantined"] += result.quarantined
        metrics.STORED.inc(result.stored)
        metrics.DUPLICATES.inc(result.duplicates)
        metrics.EVENTS.inc(result.events)
        metrics.BATCH_MESSAGES.observe(messages)
        metrics.COMMIT_SECONDS.observe(result.commit_s)
        w = self._window
        w["batches"] += 1
        w["messages"] += messages
        w["commit_s"] += result.commit_s
        if time.monotonic() - w["started"] >= 10 and w["batches"]:
            span = time.monotonic() - w["started"]
            logger.info(
                "ingest progress",
                extra={
                    "msg_per_s": round(w["messages"] / span),
                    "batches": w["batches"],
                    "avg_batch": round(w["messages"] / w["batches"]),
                    "avg_commit_ms": round(1000 * w["commit_s"] / w["batches"], 1),
                    "decode_share": round(w["decode_s"] / span, 2),
                    "commit_share": round(w["commit_s"] / span, 2),
                    "buffered": len(self.bridge.buffer) if self.bridge else 0,
                    "spool_bytes": self.spool.depth_bytes,
                },
            )
            self._window = {"batches": 0, "messages": 0, "commit_s": 0.0, "decode_s": 0.0, "started": time.monotonic()}

    async def replay_segment(self, slot: Slot) -> None:
        """Replay the oldest spool segment in order, then delete it."""
        oldest = self.spool.oldest()
        if oldest is None:
            return
        segment, messages = oldest
        step = self.settings.ingest_batch_max
        try:
            for start in range(0, len(messages), step):
                chunk = messages[start : start + step]
                await self.commit(slot, await self.decode_all(chunk, rate_limit=False))
        except DB_DOWN as exc:
            self.db_lost(slot, exc)
            return
        self.spool.remove(segment)
        self.stats["replayed"] += len(messages)
        metrics.REPLAYED.inc(len(messages))
        metrics.SPOOL_BYTES.set(self.spool.depth_bytes)
        logger.info("replayed spool segment", extra={"segment": segment.name, "messages": len(messages)})

    # --- housekeeping ----------------------------------------------------------------------------
    async def housekeeping(self) -> None:
        """Heartbeat, rollups, retention and registry refresh, each on its own period."""
        conn: asyncpg.Connection | None = None
        last = {"rollup": 0.0, "retention": time.monotonic() - 3300.0, "registry": time.monotonic()}
        while True:
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.url, timeout=3)
                    await init_connection(conn)
                    await conn.add_listener(REGISTRY_CHANNEL, self._on_registry)
                now = time.monotonic()
                await conn.execute(HEARTBEAT, self.worker_id, self.started_at, self.health())
                if now - last["rollup"] >= 5:
                    last["rollup"] = now
                    await refresh(conn)
                if now - last["registry"] >= 60:
                    last["registry"] = now
                    await self.load_registry(conn)
                if now - last["retention"] >= 3600:
                    last["retention"] = now
                    await apply_retention(conn, self.settings.retention_raw_days, self.settings.retention_rollup_days)
            except DB_DOWN as exc:
                logger.debug("housekeeping: database unavailable (%s)", exc)
                if conn is not None:
                    conn.terminate()
                conn = None
            except asyncpg.PostgresError:
                logger.exception("housekeeping failed")
            await asyncio.sleep(5.0)

    def _ack(self, raws: list[RawMessage]) -> None:
        assert self.bridge is not None
        self.bridge.ack(raws)

    def _on_registry(self, conn: object, pid: int, channel: str, payload: str) -> None:
        asyncio.get_running_loop().create_task(self._reload_registry())

    async def _reload_registry(self) -> None:
        try:
            conn = await self.aux()
            async with self._aux_lock:
                await self.load_registry(conn)
        except (asyncpg.PostgresError, *DB_DOWN) as exc:
            logger.warning("registry reload failed: %s", exc)

    def health(self) -> dict[str, object]:
        """What /healthz and the heartbeat report."""
        connected = self.bridge is not None and self.bridge.connected.is_set()
        db_up = any(slot.conn is not None and not slot.conn.is_closed() for slot in self.slots)
        metrics.BROKER_UP.set(1 if connected else 0)
        # A worker that is connected to the broker is healthy even with the database down: it spools.
        return {
            "ok": connected,
            "worker_id": self.worker_id,
            "broker": connected,
            "database": db_up,
            "spool_bytes": self.spool.depth_bytes,
            **self.stats,
        }

    # --- lifecycle -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set, then finish the batch in hand and disconnect; 1 if a task died."""
        loop = asyncio.get_running_loop()
        self.bridge = Bridge(
            self.settings.resolved_mqtt_url(),
            self.worker_id,
            SUBSCRIPTIONS,
            self.settings.ingest_share_group or None,
            self.settings.ingest_max_inflight,
            loop,
            self.settings.ingest_session_expiry_s,
            self.settings.mqtt_tls_ca,
        )
        for slot in self.slots:
            await self.ensure_db(slot)
        server = await metrics.serve(self.settings.ingest_metrics_port, self.health)
        self.bridge.start()
        writers = [asyncio.create_task(self.write_loop(slot), name=f"writer-{slot.index}") for slot in self.slots]
        collector = asyncio.create_task(self.collect(), name="collector")
        keeper = asyncio.create_task(self.housekeeping(), name="housekeeping")
        logger.info("ingest running", extra={"worker": self.worker_id, "subscriptions": list(SUBSCRIPTIONS)})
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({*writers, collector, keeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        failed = False
        for task in done - {stopper}:
            failed = True
            logger.error(
                "task %s stopped unexpectedly: exiting for a restart", task.get_name(), exc_info=task.exception()
            )
        # Clean shutdown: no new deliveries, then commit and ack everything already received.
        self.bridge.unsubscribe()
        drained = True
        try:
            await asyncio.wait_for(self._drain(), 15)
        except TimeoutError:
            drained = False  # keep the session: the broker redelivers what we did not ack when we return
            logger.warning("could not commit everything within 15 s; unacked messages stay with the broker")
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        for task in (*writers, keeper, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.bridge.stop(end_session=drained)
        if server is not None:
            server.close()
        for conn in (*(slot.conn for slot in self.slots), self._aux_conn):
            if conn is not None:
                await conn.close()
        logger.info("ingest stopped", extra=self.stats)
        return 1 if failed else 0

    async def _drain(self) -> None:
        """Wait until the bridge buffer and the batch queue are empty and stay so for a moment."""
        assert self.bridge is not None
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.5:
            if self.bridge.buffer or not self.batches.empty() or self._writing:
                quiet_since = time.monotonic()
            await asyncio.sleep(0.05)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ioc ingest``."""
    parser.add_argument("--client-id", help="MQTT client id = worker id (default IOC_INGEST_CLIENT_ID)")
    parser.add_argument("--share-group", help="MQTT shared-subscription group ('' for none)")
    parser.add_argument("--metrics-port", type=int, help="port of /metrics and /healthz (0 disables)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ingest worker until SIGINT/SIGTERM."""
    updates = {
        k: v
        for k, v in {
            "ingest_client_id": args.client_id,
            "ingest_share_group": args.share_group,
            "ingest_metrics_port": args.metrics_port,
        }.items()
        if v is not None
    }
    if updates:
        settings = settings.model_copy(update=updates)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await IngestService(settings).run(stop)

    try:
        import uvloop  # installed with uvicorn[standard]; a faster event loop for asyncpg and the hot path
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())

"""``ioc ingest``: broker -> bridge -> decoders -> validation -> writer (COPY) -> TimescaleDB -> NOTIFY.

This module only wires the stages together and runs them:

- ``bridge``: the MQTT connection; buffers arriving messages, sends PUBACKs on request.
- ``batching``: the collector takes buffered messages in batches that grow with the load and
  ``pipeline`` decodes and validates them (``registry``: the devices in memory).
- ``writers``: each writer task commits a batch (``commits``) on its own connection (``connections``)
  and only then ``acks`` it, in receive order; while the database is away it goes to the on-disk spool
  instead (``spooling``: fsync, then ack) and is replayed in order when it returns.
- ``housekeeping`` beside: heartbeat, rollups, retention, registry refresh (stale devices are marked
  once, by the alert leader of ``ioc serve``); ``counters`` and ``metrics``: what the worker reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import time
from datetime import UTC, datetime

from ingest import metrics
from ingest.acks import AckSequencer
from ingest.batching import Batches, Collector
from ingest.bridge import Bridge
from ingest.commits import Committer
from ingest.connections import Connections
from ingest.counters import Counters
from ingest.decoders import SUBSCRIPTIONS
from ingest.housekeeping import Housekeeping
from ingest.pipeline import Pipeline
from ingest.registry import DeviceRegistry
from ingest.spool import Spool
from ingest.spooling import Spooler
from ingest.writer import Throttles
from ingest.writers import Writers
from ioc.kinds import load_kinds
from ioc.records import RawMessage
from ioc.settings import Settings

logger = logging.getLogger(__name__)

# The hot path allocates a few container objects per message; CPython's default (a young collection every
# 700 allocations, each also scanning survivors) cost ~30 % of the decode path at 10,000 msg/s (measured).
GC_YOUNG_THRESHOLD = 20_000
DRAIN_S = 15.0  # a clean stop commits what was received within this long, else leaves it to the broker
QUIET_S = 0.5  # the buffer and the queue stay empty this long: drained


class IngestService:
    """One ingest worker: its stages, wired."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker_id = settings.ingest_client_id
        self.started_at = datetime.now(UTC)
        self.url = settings.resolved_database_url()
        kinds = load_kinds(settings.kinds_file)
        self.spool = Spool(settings.spool_dir(), settings.ingest_spool_max_bytes)
        self.connections = Connections(
            self.url,
            self.worker_id,
            settings.ingest_writers,
            Throttles(),
            lambda conn: self.registry.load(conn),
            self.spool.directory,
        )
        self.registry = DeviceRegistry(kinds, settings.ingest_auto_register, self.connections.aux)
        self.pipeline = Pipeline(settings, kinds, self.registry)
        self.counters = Counters(self._progress_context)
        self.committer = Committer(self.pipeline, self.counters)
        self.spooler = Spooler(
            self.spool, self.connections, self.pipeline, self.committer, self.counters, settings.ingest_batch_max
        )
        self.batches = Batches(settings.ingest_writers)
        self.acks = AckSequencer(self._ack)
        self.writers = Writers(self.connections, self.batches, self.committer, self.spooler, self.acks)
        self.bridge: Bridge | None = None

    def health(self) -> dict[str, object]:
        """What /healthz and the heartbeat report."""
        connected = self.bridge is not None and self.bridge.connected.is_set()
        metrics.BROKER_UP.set(1 if connected else 0)
        # A worker that is connected to the broker is healthy even with the database down: it spools.
        return {
            "ok": connected,
            "worker_id": self.worker_id,
            "broker": connected,
            "database": self.connections.any_up,
            "spool_bytes": self.spool.depth_bytes,
            **self.counters.stats,
        }

    def _progress_context(self) -> dict[str, object]:
        return {"buffered": len(self.bridge.buffer) if self.bridge else 0, "spool_bytes": self.spool.depth_bytes}

    def _ack(self, raws: list[RawMessage]) -> None:
        assert self.bridge is not None
        self.bridge.ack(raws)

    # --- lifecycle -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set, then finish the batch in hand and disconnect; 1 if a task died."""
        bridge = self.bridge = self._bridge()
        for slot in self.connections.slots:
            await self.connections.ensure(slot)
        server = await metrics.serve(self.settings.ingest_metrics_port, self.health)
        tune_gc()
        bridge.start()
        collector, others = self._start(bridge)
        logger.info("ingest running", extra={"worker": self.worker_id, "subscriptions": list(SUBSCRIPTIONS)})
        failed = await self._until_stopped(stop, [collector, *others])
        drained = await self._drain_and_cancel(bridge, collector, others)
        bridge.stop(end_session=drained)
        if server is not None:
            server.close()
        await self.connections.close()
        logger.info("ingest stopped", extra=self.counters.stats)
        return 1 if failed else 0

    def _bridge(self) -> Bridge:
        s = self.settings
        return Bridge(
            s.resolved_mqtt_url(),
            self.worker_id,
            SUBSCRIPTIONS,
            s.ingest_share_group or None,
            s.ingest_max_inflight,
            asyncio.get_running_loop(),
            s.ingest_session_expiry_s,
            s.mqtt_tls_ca,
        )

    def _start(self, bridge: Bridge) -> tuple[asyncio.Task[None], list[asyncio.Task[None]]]:
        """Start the collector, the writers and housekeeping; returns (collector, the others)."""
        s = self.settings
        collector = Collector(
            bridge,
            self.pipeline,
            self.batches,
            self.acks,
            self.counters,
            limit=s.ingest_batch_max,
            wait_s=s.ingest_batch_wait_ms / 1000,
        )
        keeper = Housekeeping(s, self.url, self.worker_id, self.started_at, self.health, self.registry)
        others = [
            asyncio.create_task(self.writers.run(slot), name=f"writer-{slot.index}") for slot in self.connections.slots
        ]
        others.append(asyncio.create_task(keeper.run(), name="housekeeping"))
        return asyncio.create_task(collector.run(), name="collector"), others

    @staticmethod
    async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> bool:
        """Wait for ``stop`` or for a task to end (a failure: logged); True in the second case."""
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        for task in done - {stopper}:
            logger.error(
                "task %s stopped unexpectedly: exiting for a restart", task.get_name(), exc_info=task.exception()
            )
        return bool(done - {stopper})

    async def _drain_and_cancel(
        self, bridge: Bridge, collector: asyncio.Task[None], others: list[asyncio.Task[None]]
    ) -> bool:
        """Clean shutdown: no new deliveries, commit and ack what was received, stop the tasks; True if drained."""
        bridge.unsubscribe()
        drained = True
        try:
            await asyncio.wait_for(self._drain(bridge), DRAIN_S)
        except TimeoutError:
            drained = False  # keep the session: the broker redelivers what we did not ack when we return
            logger.warning("could not commit everything within %.0f s; unacked messages stay with the broker", DRAIN_S)
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        for task in others:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return drained

    async def _drain(self, bridge: Bridge) -> None:
        """Wait until the bridge buffer and the batch queue are empty and stay so for a moment."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < QUIET_S:
            if bridge.buffer or self.batches.busy():
                quiet_since = time.monotonic()
            await asyncio.sleep(0.05)


def tune_gc() -> None:
    """Collect cyclic garbage less often, and never rescan what start-up built (modules, settings, registry)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


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

"""What a worker counts: totals for /healthz and the heartbeat, Prometheus metrics, and a progress log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest import metrics
from ingest.pipeline import Item
from ingest.writer import WriteResult
from ioc.reasons import Reason

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0


@dataclass(slots=True)
class Window:
    """The hot path's figures since the last progress line."""

    batches: int = 0
    messages: int = 0
    commit_s: float = 0.0
    decode_s: float = 0.0
    started: float = field(default_factory=time.monotonic)


class Counters:
    """The three counter sets of one worker, updated together."""

    def __init__(self, context: Callable[[], dict[str, object]]) -> None:
        self.stats = {"received": 0, "stored": 0, "duplicates": 0, "quarantined": 0, "spooled": 0, "replayed": 0}
        self._context = context  # what the progress line adds (buffered messages, spool depth)
        self._window = Window()

    def received(self, messages: int) -> None:
        """Count messages taken from the bridge."""
        self.stats["received"] += messages
        metrics.RECEIVED.inc(messages)

    def decoded(self, seconds: float) -> None:
        """Add the time decoding took (the progress line's decode share)."""
        self._window.decode_s += seconds

    def spooled(self, messages: int, depth_bytes: int) -> None:
        """Count messages written to the spool."""
        self.stats["spooled"] += messages
        metrics.SPOOLED.inc(messages)
        metrics.SPOOL_BYTES.set(depth_bytes)

    def replayed(self, messages: int, depth_bytes: int) -> None:
        """Count messages replayed from the spool."""
        self.stats["replayed"] += messages
        metrics.REPLAYED.inc(messages)
        metrics.SPOOL_BYTES.set(depth_bytes)

    def committed(self, items: list[Item], result: WriteResult) -> None:
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
        self.stats["stored"] += result.stored
        self.stats["duplicates"] += result.duplicates
        self.stats["quarantined"] += result.quarantined
        metrics.STORED.inc(result.stored)
        metrics.DUPLICATES.inc(result.duplicates)
        metrics.EVENTS.inc(result.events)
        metrics.BATCH_MESSAGES.observe(len(items))
        metrics.COMMIT_SECONDS.observe(result.commit_s)
        w = self._window
        w.batches += 1
        w.messages += len(items)
        w.commit_s += result.commit_s
        if time.monotonic() - w.started >= PROGRESS_EVERY_S:
            self._progress()

    def _progress(self) -> None:
        """Log the throughput, batch size and time shares of the window, and start a new one."""
        w = self._window
        span = time.monotonic() - w.started
        logger.info(
            "ingest progress",
            extra={
                "msg_per_s": round(w.messages / span),
                "batches": w.batches,
                "avg_batch": round(w.messages / w.batches),
                "avg_commit_ms": round(1000 * w.commit_s / w.batches, 1),
                "decode_share": round(w.decode_s / span, 2),
                "commit_share": round(w.commit_s / span, 2),
                **self._context(),
            },
        )
        self._window = Window()

"""Prometheus metrics of the ingest, and a tiny HTTP endpoint serving them with /healthz."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger(__name__)

RECEIVED = Counter("ioc_ingest_received_total", "MQTT messages received")
STORED = Counter("ioc_ingest_stored_rows_total", "Measurement rows committed")
DUPLICATES = Counter("ioc_ingest_duplicate_rows_total", "Measurement rows dropped as already stored")
EVENTS = Counter("ioc_ingest_events_total", "Events committed")
QUARANTINED = Counter("ioc_ingest_quarantined_total", "Messages quarantined", ["reason"])
SPOOLED = Counter("ioc_ingest_spooled_total", "Messages written to the on-disk spool")
REPLAYED = Counter("ioc_ingest_replayed_total", "Messages replayed from the spool")
BATCH_MESSAGES = Histogram(
    "ioc_ingest_batch_messages", "Messages per committed batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
)
COMMIT_SECONDS = Histogram(
    "ioc_ingest_commit_seconds", "Batch commit latency", buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
LAG_SECONDS = Histogram(
    "ioc_ingest_lag_seconds",
    "Commit time minus reading time (publish-to-commit when clocks agree)",
    buckets=LAG_BUCKETS,
)
SPOOL_BYTES = Gauge("ioc_ingest_spool_bytes", "Bytes waiting in the spool")
DB_UP = Gauge("ioc_ingest_database_up", "1 when the database accepts writes")
BROKER_UP = Gauge("ioc_ingest_broker_up", "1 when connected to the broker")


async def serve(port: int, health: Callable[[], dict[str, object]]) -> asyncio.AbstractServer | None:
    """Serve GET /metrics and /healthz on ``port`` (0 disables); a busy port logs a warning."""
    if port == 0:
        return None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            path = line.split(b" ")[1] if line.count(b" ") >= 2 else b"/"
            if path.startswith(b"/metrics"):
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest()
            elif path.startswith(b"/healthz"):
                doc = health()
                status = "200 OK" if doc.get("ok") else "503 Service Unavailable"
                ctype, body = "application/json", json.dumps(doc).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    try:
        return await asyncio.start_server(handle, "0.0.0.0", port)
    except OSError as exc:
        logger.warning("metrics port %s unavailable (%s): metrics endpoint disabled for this worker", port, exc)
        return None

"""The writer tasks (ingest.writers) in this process on the real database: the spool is replayed without new traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from ingest.service import IngestService
from ioc.records import RawMessage
from ioc.settings import Settings
from tests.support.stack import register_devices


async def test_a_batch_spooled_after_the_spool_emptied_is_replayed_without_new_traffic(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Writer 0 replays the spool. Another writer may spool a batch just after a replay emptied it, while
    writer 0 already waits for the next batch: that batch must still be replayed, not wait for more messages
    (found by test_ingest_resilience: 1,929 acknowledged messages stayed in the spool once the load ended)."""
    svc = IngestService(
        settings.model_copy(
            update={
                "ingest_client_id": "writers-in-process",
                "ingest_spool_dir": tmp_path,
                "ingest_metrics_port": 0,
                "ingest_writers": 2,
            }
        )
    )
    device = "T-WRITERS-1"
    await register_devices(pool, (device, "flood", "canonical"))
    first, second = svc.connections.slots
    assert await svc.connections.ensure(first)
    writer = asyncio.create_task(svc.writers.run(first))
    try:
        for _ in range(10):  # let writer 0 find the spool empty and wait for a batch (no I/O on the way)
            await asyncio.sleep(0)
        payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "metrics": {"water_level_cm": 12.5}}).encode()
        await svc.spooler.append(second, [RawMessage(f"ioc/v1/flood/{device}/telemetry", payload, time.time())])
        deadline = time.monotonic() + 10
        while not await pool.fetchval("SELECT count(*) FROM measurements WHERE device_id = $1", device):
            assert time.monotonic() < deadline, "the spooled batch was not replayed"
            await asyncio.sleep(0.05)
        assert not svc.spool
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await svc.connections.close()

"""The quarantine: bounded per device whatever it sends, counted by reason, and every reason given by the code.

The flood goes through the real broker and the session's ingest worker; the counting tests run an
IngestService in this process against the real database, so the Prometheus counter can be read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY

from ingest.connections import Slot
from ingest.decoders import canonical
from ingest.pipeline import Item
from ingest.quarantine import TOPIC_CHARS, QuarantineBudget, QuarantinePolicy
from ingest.service import IngestService
from ioc.reasons import Reason
from ioc.records import Event, RawMessage
from ioc.settings import Settings
from tests.support.auth import signed_in
from tests.support.stack import Broker, register_devices, serving

logger = logging.getLogger(__name__)

SIZE_SQL = "SELECT pg_total_relation_size('quarantine') + pg_total_relation_size('quarantine_overflow')"
COUNTED_SQL = """
SELECT (SELECT count(*) FROM quarantine WHERE device_id = $1)
     + (SELECT coalesce(sum(messages), 0) FROM quarantine_overflow WHERE device_id = $1)
"""


def publish_all(broker: Broker, topic: str, payloads: list[bytes]) -> None:
    """Publish every payload at QoS 1 as fast as the broker takes them; return when all are acknowledged."""
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.username_pw_set(broker.user, broker.password)
    pub.max_inflight_messages_set(100)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        infos = [pub.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published()
    finally:
        pub.disconnect()
        pub.loop_stop()


@pytest.mark.usefixtures("ingest")
async def test_a_flooding_device_adds_bounded_bytes(broker: Broker, pool: asyncpg.Pool, settings: Settings) -> None:
    """Issue 11.5: 1,500 random payloads of 59 KiB (and over the 64 KiB limit) from one device in a few
    seconds added 91 MiB to the quarantine; with the budget they add a bounded, documented number of bytes."""
    device = "T-QFLOOD-1"
    await register_devices(pool, (device, "flood", "canonical"))
    payloads = [os.urandom(59 * 1024) for _ in range(750)] + [os.urandom(100 * 1024) for _ in range(750)]
    before = await pool.fetchval(SIZE_SQL)
    started = time.monotonic()
    publish_all(broker, f"ioc/v1/flood/{device}/telemetry", payloads)
    published_s = time.monotonic() - started
    deadline = time.monotonic() + 60
    while (counted := await pool.fetchval(COUNTED_SQL, device)) < len(payloads):
        assert time.monotonic() < deadline, f"{counted} of {len(payloads)} messages quarantined after 60 s"
        await asyncio.sleep(0.2)
    assert counted == len(payloads)  # every message is accounted for, none twice
    grown = await pool.fetchval(SIZE_SQL) - before

    policy = QuarantinePolicy.from_settings(settings)
    samples = await pool.fetch(
        "SELECT reason, payload, payload_bytes, topic FROM quarantine WHERE device_id = $1", device
    )
    windows = await pool.fetch(
        "SELECT reason, window_start, messages, bytes FROM quarantine_overflow WHERE device_id = $1", device
    )
    keys = {(r["reason"], r["window_start"]) for r in windows} | {(r["reason"], None) for r in samples}
    reasons = {r["reason"] for r in samples}
    assert Reason.RATE_LIMITED in reasons and Reason.OVERSIZED in reasons | {r["reason"] for r in windows}
    spans = len({r["window_start"] for r in windows}) or 1
    assert len(samples) <= policy.samples * len(reasons) * spans
    assert all(len(r["payload"]) <= policy.sample_bytes and r["payload_bytes"] >= 59 * 1024 for r in samples)
    assert sum(r["bytes"] for r in windows) + sum(r["payload_bytes"] for r in samples) == sum(map(len, payloads))
    # The documented bound (docs/devices.md, "Quarantine budget"): per reason and window, the samples' bytes
    # plus one counter row, with room for the pages and index entries PostgreSQL allocates for them.
    per_key = policy.samples * (policy.sample_bytes + TOPIC_CHARS + 500 + 200) + 8192
    bound = len(keys) * per_key + 64 * 1024
    logger.info(
        f"1,500 messages ({sum(map(len, payloads)) / 2**20:.0f} MiB) published in {published_s:.1f} s: "
        f"quarantine grew by {grown / 1024:.0f} KiB (bound {bound / 1024:.0f} KiB), {len(samples)} samples, "
        f"{len(windows)} counter rows, reasons {sorted(reasons)}"
    )
    assert grown <= bound, f"quarantine grew by {grown} bytes, over the bound of {bound}"
    assert grown < 1024 * 1024


def test_the_budget_keeps_samples_per_device_reason_and_window() -> None:
    budget = QuarantineBudget(QuarantinePolicy(samples=3, window_s=60, sample_bytes=16))
    t0 = 1_800_000_000.0  # a window boundary (divisible by 60)
    kept = [budget.keep("A", Reason.BAD_JSON, t0 + i / 100) for i in range(5)]
    assert kept == [True, True, True, False, False]
    assert budget.keep("A", Reason.RATE_LIMITED, t0 + 1)  # another reason: its own budget
    assert budget.keep("B", Reason.BAD_JSON, t0 + 1)  # another device: its own budget
    assert budget.keep(None, Reason.UNKNOWN_TOPIC, t0 + 1)  # no device: one shared budget
    assert budget.keep("A", Reason.BAD_JSON, t0 + 60)  # the next window starts afresh
    assert QuarantinePolicy(window_s=60).window(t0 + 59.9) == t0


def test_the_budget_caps_the_samples_of_the_whole_fleet_per_window() -> None:
    """Many broken devices at once (a vendor's firmware): at most total_samples rows per window in all."""
    budget = QuarantineBudget(QuarantinePolicy(samples=2, window_s=60, total_samples=5))
    t0 = 1_800_000_000.0
    kept = [budget.keep(f"D{i}", Reason.BAD_SCHEMA, t0) for i in range(10)]
    assert kept == [True] * 5 + [False] * 5
    assert budget.keep("D9", Reason.BAD_SCHEMA, t0 + 60)  # a new window, a new total
    assert [budget.keep(f"E{i}", Reason.BAD_SCHEMA, t0 + 1) for i in range(5)] == [True] * 4 + [False]


def test_the_budget_stays_bounded_in_memory() -> None:
    budget = QuarantineBudget(QuarantinePolicy(samples=1, window_s=60), max_keys=100)
    t0 = 1_800_000_000.0
    for i in range(100):
        budget.keep(f"D{i}", Reason.BAD_JSON, t0)
    assert budget.keep("new", Reason.BAD_JSON, t0 + 60)  # a new window: the old keys are forgotten
    assert len(budget) == 1
    for i in range(150):
        budget.keep(f"E{i}", Reason.BAD_JSON, t0 + 60)
    assert len(budget) <= 100


# --- an ingest service in this process, on the real database ---------------------------------------------
@pytest.fixture
async def service(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[IngestService, Slot]]:
    """An IngestService with one writer connected to the test database (no broker)."""
    svc = IngestService(
        settings.model_copy(
            update={"ingest_client_id": "ingest-in-process", "ingest_spool_dir": tmp_path, "ingest_metrics_port": 0}
        )
    )
    slot = svc.connections.slots[0]
    assert await svc.connections.ensure(slot)
    try:
        yield svc, slot
    finally:
        await svc.connections.close()


def counted(reason: Reason) -> float:
    """ioc_ingest_quarantined_total{reason} in this process."""
    return REGISTRY.get_sample_value("ioc_ingest_quarantined_total", {"reason": reason.value}) or 0.0


def raw(topic: str, payload: bytes) -> RawMessage:
    return RawMessage(topic, payload, time.time())


async def test_quarantined_messages_are_counted_by_reason(
    service: tuple[IngestService, Slot], pool: asyncpg.Pool
) -> None:
    """Issue 12.5: ioc_ingest_quarantined_total{reason} counts every quarantined message, sampled or not."""
    svc, slot = service
    device = "T-QCOUNT-1"
    await register_devices(pool, (device, "flood", "canonical"))
    await svc.registry.load(slot.conn)  # type: ignore[arg-type]
    before = {r: counted(r) for r in (Reason.BAD_JSON, Reason.UNKNOWN_TOPIC, Reason.BAD_DEVICE_ID)}
    messages = [raw(f"ioc/v1/flood/{device}/telemetry", b"{not json") for _ in range(25)]
    messages += [raw(f"ioc/v1/flood/{device}/rumours", b"{}"), raw("ioc/v1/flood/bad.id/telemetry", b"{}")]
    await svc.committer.commit(slot, await svc.pipeline.decode_all(messages, rate_limit=True))
    assert counted(Reason.BAD_JSON) - before[Reason.BAD_JSON] == 25
    assert counted(Reason.UNKNOWN_TOPIC) - before[Reason.UNKNOWN_TOPIC] == 1
    assert counted(Reason.BAD_DEVICE_ID) - before[Reason.BAD_DEVICE_ID] == 1
    rows = await pool.fetchval("SELECT count(*) FROM quarantine WHERE device_id = $1 AND reason = 'bad_json'", device)
    over = await pool.fetchval(
        "SELECT sum(messages) FROM quarantine_overflow WHERE device_id = $1 AND reason = 'bad_json'", device
    )
    assert (rows, over) == (svc.pipeline.quarantine.policy.samples, 25 - svc.pipeline.quarantine.policy.samples)


async def test_unknown_kinds_and_shapes_are_unknown_topics(
    service: tuple[IngestService, Slot], pool: asyncpg.Pool
) -> None:
    """Issue 12.4: a topic under a subscribed filter that no decoder owns is quarantined as unknown_topic."""
    svc, slot = service
    device = "T-QTOPIC-1"
    await register_devices(pool, (device, "flood", "canonical"))
    topics = [
        f"ioc/v1/submarine/{device}/telemetry",  # a kind the kinds file does not define
        f"ioc/v1/flood/{device}/rumours",  # an unknown channel
        f"fiware/WeatherObserved/{device}",  # a FIWARE type no decoder handles
    ]
    items = await svc.pipeline.decode_all([raw(t, b'{"ts": 1, "metrics": {}}') for t in topics], rate_limit=False)
    assert [it.reason for it in items] == [Reason.UNKNOWN_TOPIC] * 3
    await svc.committer.commit(slot, items)
    got = await pool.fetch("SELECT topic, reason, device_id FROM quarantine WHERE topic = ANY($1::text[])", topics)
    assert sorted((r["topic"], r["reason"]) for r in got) == sorted((t, "unknown_topic") for t in topics)
    # A device's own canonical tree names it: its unknown topics are charged to its budget, and shown with it.
    charged = {r["topic"]: r["device_id"] for r in got}
    assert [charged[t] for t in topics] == [device, device, None]


async def test_a_decoder_bug_is_quarantined_and_counted(
    service: tuple[IngestService, Slot], pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder that raises something unexpected: internal_error, and the stream goes on."""
    svc, slot = service
    device = "T-QBUG-1"
    await register_devices(pool, (device, "flood", "canonical"))

    def broken(*args: object) -> list[object]:
        raise KeyError("a bug")

    monkeypatch.setattr(canonical, "decode", broken)
    before = counted(Reason.INTERNAL_ERROR)
    items = await svc.pipeline.decode_all([raw(f"ioc/v1/flood/{device}/telemetry", b"{}")], rate_limit=False)
    await svc.committer.commit(slot, items)
    assert counted(Reason.INTERNAL_ERROR) - before == 1
    row = await pool.fetchrow("SELECT reason, detail FROM quarantine WHERE device_id = $1", device)
    assert row["reason"] == "internal_error" and "a bug" in row["detail"]


async def test_a_row_the_database_refuses_is_quarantined(
    service: tuple[IngestService, Slot], pool: asyncpg.Pool
) -> None:
    """A record that passed validation but that PostgreSQL refuses (jsonb has no NUL): db_rejected, the rest
    of the batch is stored."""
    svc, slot = service
    good, bad = "T-QDB-good", "T-QDB-bad"
    await register_devices(pool, (good, "camera", "canonical"), (bad, "camera", "canonical"))
    now = datetime.now(UTC)
    items = [
        Item(
            raw(f"ioc/v1/camera/{d}/event", b"{}"),
            [Event(now, d, "traffic.accident", "high", 0.9, attrs)],
            now,
            "camera",
            device_id=d,
        )
        for d, attrs in ((good, {"lane": 1}), (bad, {"note": "a\x00b"}))
    ]
    before = counted(Reason.DB_REJECTED)
    await svc.committer.commit(slot, items)
    assert counted(Reason.DB_REJECTED) - before == 1
    assert await pool.fetchval("SELECT count(*) FROM events WHERE device_id = $1", good) == 1
    row = await pool.fetchrow("SELECT reason, detail FROM quarantine WHERE device_id = $1", bad)
    assert row["reason"] == "db_rejected" and row["detail"]


@pytest.fixture(scope="module")
def api(run_ioc) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An API server for this module's admin reads, stopped at its end."""
    with serving(run_ioc, "serve-quarantine") as base:
        yield base


async def test_admins_read_samples_and_counts(
    service: tuple[IngestService, Slot], pool: asyncpg.Pool, api: str, people: dict[str, str]
) -> None:
    """GET /api/v1/quarantine shows the kept samples with the size received, and the counts past the budget."""
    svc, slot = service
    device = "T-QAPI-1"
    await register_devices(pool, (device, "flood", "canonical"))
    payload = b"{" + b"x" * 5000  # not JSON, and longer than a sample
    items = await svc.pipeline.decode_all(
        [raw(f"ioc/v1/flood/{device}/telemetry", payload) for _ in range(15)], rate_limit=False
    )
    await svc.committer.commit(slot, items)
    async with signed_in(api, people["admin"]) as admin:
        body = (await admin.get("/api/v1/quarantine", params={"reason": "bad_json", "limit": 1000})).json()
    samples = [i for i in body["items"] if i["device_id"] == device]
    counts = [o for o in body["overflow"] if o["device_id"] == device]
    policy = svc.pipeline.quarantine.policy
    assert len(samples) == policy.samples
    assert all(s["size"] == len(payload) and s["truncated"] for s in samples)
    assert [(c["reason"], c["messages"], c["bytes"]) for c in counts] == [
        ("bad_json", 15 - policy.samples, (15 - policy.samples) * len(payload))
    ]

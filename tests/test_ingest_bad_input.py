"""Nasty messages through the real broker and ingest: each is quarantined with its reason, none is stored,
and the stream keeps flowing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.support.stack import Broker, mosquitto_pub, register_devices, wait_rows

pytestmark = pytest.mark.usefixtures("ingest")

NOW = time.time() - 60
OK_METRICS = '{"water_level_cm": 12.5}'


def tel(metrics: str = OK_METRICS, ts: str = "", extra: str = "") -> bytes:
    return f'{{"ts": {ts or NOW}, "seq": 1, "metrics": {metrics}{extra}}}'.encode()


def iso(offset_s: float = 0) -> str:
    return (datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=offset_s)).isoformat()


def nested(depth: int) -> bytes:
    return tel(extra=', "x": ' + "[" * depth + "]" * depth)


# (device id suffix, kind, format, topic template ({d} = device id), payload, expected reason)
CASES: list[tuple[str, str, str, str, bytes, str]] = [
    ("trunc", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", b'{"ts": 1, "metrics": {"water_le', "bad_json"),
    ("nan", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel('{"water_level_cm": NaN}'), "non_finite"),
    ("inf", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel('{"water_level_cm": Infinity}'), "non_finite"),
    ("big", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel('{"water_level_cm": 1e400}'), "non_finite"),
    (
        "dupkey",
        "flood",
        "canonical",
        "ioc/v1/flood/{d}/telemetry",
        tel('{"water_level_cm": 1, "water_level_cm": 2}'),
        "duplicate_key",
    ),
    ("deep", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", nested(100), "too_deep"),
    (
        "huge",
        "flood",
        "canonical",
        "ioc/v1/flood/{d}/telemetry",
        tel(extra=', "pad": "' + "x" * 70_000 + '"'),
        "oversized",
    ),
    (
        "latin1",
        "flood",
        "canonical",
        "ioc/v1/flood/{d}/telemetry",
        tel(extra=', "note": "ng\xe2p"').decode().encode("latin-1"),
        "bad_encoding",
    ),
    ("utf16", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel().decode().encode("utf-16"), "bad_encoding"),
    ("empty", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", b"", "empty"),
    ("notobj", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel("[1, 2]"), "bad_schema"),
    ("strval", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel('{"water_level_cm": "12"}'), "bad_schema"),
    ("boolval", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel('{"water_level_cm": true}'), "bad_schema"),
    ("unkmetric", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel('{"pm25": 3}'), "unknown_metric"),
    ("range", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel('{"water_level_cm": -900}'), "out_of_range"),
    (
        "future",
        "flood",
        "canonical",
        "ioc/v1/flood/{d}/telemetry",
        tel(ts='"2099-01-01T00:00:00Z"'),
        "timestamp_out_of_window",
    ),
    ("past", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel(ts="631152000"), "timestamp_out_of_window"),
    ("msepoch", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel(ts=str(int(NOW * 1000))), "bad_schema"),
    ("naive", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel(ts='"2026-11-21T07:00:00"'), "bad_schema"),
    (
        "otherdev",
        "flood",
        "canonical",
        "ioc/v1/flood/{d}/telemetry",
        tel(extra=', "device_id": "FL-BT-001"'),
        "device_mismatch",
    ),
    ("wrongkind", "flood", "canonical", "ioc/v1/traffic/{d}/telemetry", tel('{"vehicle_count": 3}'), "kind_mismatch"),
    (
        "senmlbn",
        "flood",
        "canonical",
        "ioc/v1/flood/{d}/telemetry",
        json.dumps([{"bn": "urn:dev:ioc:FL-BT-001:", "bt": NOW, "n": "water_level", "u": "m", "v": 0.1}]).encode(),
        "device_mismatch",
    ),
    (
        "senmlunit",
        "flood",
        "canonical",
        "ioc/v1/flood/{d}/telemetry",
        json.dumps(
            [{"bn": "urn:dev:ioc:T-BAD-senmlunit:", "bt": NOW, "n": "water_level", "u": "furlong", "v": 1}]
        ).encode(),
        "bad_unit",
    ),
    ("csv3", "flood", "legacy_flood", "legacy/flood/{d}", b"T-BAD-csv3,1,2", "bad_csv"),
    (
        "csvtext",
        "flood",
        "legacy_flood",
        "legacy/flood/{d}",
        f"T-BAD-csvtext,{int(NOW)},high,2,3.7".encode(),
        "bad_csv",
    ),
    (
        "lanes",
        "traffic",
        "trafficx",
        "vendor/trafficx/{d}",
        json.dumps({"ctrl": "T-BAD-lanes", "time": iso(), "period": 60, "lanes": {"lane": 1}}).encode(),
        "bad_schema",
    ),
    (
        "speed",
        "traffic",
        "trafficx",
        "vendor/trafficx/{d}",
        json.dumps(
            {
                "ctrl": "T-BAD-speed",
                "time": iso(),
                "period": 60,
                "lanes": [{"lane": 1, "count": 4, "speed": 900, "occ": 0.1}],
            }
        ).encode(),
        "out_of_range",
    ),
    (
        "rule",
        "camera",
        "camx",
        "vendor/camx/{d}/event",
        json.dumps({"Source": "T-BAD-rule", "UtcTime": iso(), "Rule": "Dance", "Confidence": 50, "Count": 1}).encode(),
        "bad_event",
    ),
    (
        "conf",
        "camera",
        "camx",
        "vendor/camx/{d}/event",
        json.dumps({"Source": "T-BAD-conf", "UtcTime": iso(), "Rule": "Crowd", "Confidence": 150, "Count": 1}).encode(),
        "bad_event",
    ),
    (
        "fiwid",
        "traffic",
        "fiware",
        "fiware/TrafficFlowObserved/{d}",
        json.dumps(
            {
                "id": "urn:ngsi-ld:TrafficFlowObserved:TR-Q1-001",
                "type": "TrafficFlowObserved",
                "dateObserved": iso(),
                "intensity": 3,
            }
        ).encode(),
        "device_mismatch",
    ),
    ("png", "camera", "canonical", "ioc/v1/camera/{d}/snapshot", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "bad_snapshot"),
    ("status", "camera", "canonical", "ioc/v1/camera/{d}/status", b"maybe", "bad_status"),
    (
        "severity",
        "camera",
        "canonical",
        "ioc/v1/camera/{d}/event",
        json.dumps({"ts": NOW, "type": "traffic.accident", "severity": "urgent", "confidence": 0.5}).encode(),
        "bad_event",
    ),
    (
        "evtype",
        "camera",
        "canonical",
        "ioc/v1/camera/{d}/event",
        json.dumps({"ts": NOW, "type": "Accident", "severity": "high", "confidence": 0.5}).encode(),
        "bad_event",
    ),
    ("nul", "flood", "canonical", "ioc/v1/flood/{d}/telemetry", tel(extra=', "n": "a\x00b"'), "bad_encoding"),
]
UNREGISTERED = ("ioc/v1/flood/T-BAD-ghost/telemetry", tel(), "unknown_device")
# Topics outside the subscriptions never reach the ingest (and the broker ACL refuses them); these do.
UNKNOWN_CHANNEL = ("ioc/v1/flood/T-BAD-sentinel/rumours", tel(), "unknown_topic")
UNKNOWN_KIND = ("ioc/v1/submarine/T-BAD-sentinel/telemetry", tel(), "unknown_topic")
UNKNOWN_FIWARE_TYPE = ("fiware/WeatherObserved/T-BAD-sentinel", b"{}", "unknown_topic")
BAD_ID = ("ioc/v1/flood/bad.id!/telemetry", tel(), "bad_device_id")


def device(suffix: str) -> str:
    return f"T-BAD-{suffix}"


async def test_every_bad_message_is_quarantined_with_its_reason(broker: Broker, pool: asyncpg.Pool) -> None:
    assert len(CASES) >= 25
    await register_devices(
        pool, *{(device(s), kind, fmt) for s, kind, fmt, *_ in CASES}, ("T-BAD-sentinel", "flood", "canonical")
    )
    expected: dict[str, str] = {}
    for suffix, _, _, template, payload, reason in CASES:
        topic = template.format(d=device(suffix))
        expected[topic] = reason
        mosquitto_pub(broker, topic, payload)
    for topic, payload, reason in (UNREGISTERED, UNKNOWN_CHANNEL, UNKNOWN_KIND, UNKNOWN_FIWARE_TYPE, BAD_ID):
        expected[topic] = reason
        mosquitto_pub(broker, topic, payload)
    # A good message after all of them: the stream was not blocked.
    mosquitto_pub(broker, "ioc/v1/flood/T-BAD-sentinel/telemetry", tel())
    await wait_rows(pool, "SELECT 1 FROM measurements WHERE device_id = 'T-BAD-sentinel'", timeout=20)

    rows = await wait_rows(
        pool,
        "SELECT topic, reason, detail, payload FROM quarantine WHERE topic = ANY($1::text[])",
        list(expected),
        count=len(expected),
        timeout=20,
    )
    got = {r["topic"]: r["reason"] for r in rows}
    wrong = {t: (got.get(t), want) for t, want in expected.items() if got.get(t) != want}
    assert not wrong, f"topic: (got, expected) {wrong}"
    assert all(r["detail"] for r in rows), "every quarantine row explains itself"
    raw = {r["topic"]: bytes(r["payload"]) for r in rows}
    png_topic = "ioc/v1/camera/T-BAD-png/snapshot"
    assert raw[png_topic].startswith(b"\x89PNG")  # raw bytes are kept as received
    stored = await pool.fetchval(
        "SELECT count(*) FROM measurements WHERE device_id LIKE 'T-BAD-%' AND device_id <> 'T-BAD-sentinel'"
    )
    assert stored == 0
    assert await pool.fetchval("SELECT count(*) FROM events WHERE device_id LIKE 'T-BAD-%'") == 0


async def test_a_flooding_device_is_rate_limited_not_the_others(broker: Broker, pool: asyncpg.Pool) -> None:
    await register_devices(pool, ("T-RATE-1", "flood", "canonical"), ("T-RATE-2", "flood", "canonical"))
    lines = "\n".join(json.dumps({"ts": NOW + i / 1000, "metrics": {"water_level_cm": 1}}) for i in range(400))
    mosquitto_pub(broker, "ioc/v1/flood/T-RATE-1/telemetry", lines.encode(), lines=True)
    mosquitto_pub(broker, "ioc/v1/flood/T-RATE-2/telemetry", tel())
    await wait_rows(pool, "SELECT 1 FROM measurements WHERE device_id = 'T-RATE-2'", timeout=20)
    # Every message is stored or quarantined: a sample as rows, the rest counted (the quarantine budget).
    accounted = """
        SELECT (SELECT count(*) FROM measurements WHERE device_id = 'T-RATE-1')
             + (SELECT count(*) FROM quarantine WHERE device_id = 'T-RATE-1' AND reason = 'rate_limited')
             + (SELECT coalesce(sum(messages), 0) FROM quarantine_overflow
                WHERE device_id = 'T-RATE-1' AND reason = 'rate_limited')
    """
    deadline = time.monotonic() + 20
    while (total := await pool.fetchval(accounted)) < 400:
        assert time.monotonic() < deadline, f"{total} of 400 messages stored or quarantined"
        await asyncio.sleep(0.1)
    assert total == 400
    stored = await pool.fetchval("SELECT count(*) FROM measurements WHERE device_id = 'T-RATE-1'")
    assert 200 <= stored < 400  # the burst got through, the excess did not

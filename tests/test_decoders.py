"""Every format decodes to exactly the expected records (units converted, UTC times, parts, seq)."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest
from paho.mqtt.client import topic_matches_sub

from ingest.decoders import FORMATS, SUBSCRIPTIONS, Limits, decode, route, topic_device
from ingest.decoders.parsing import DEFAULT_LIMITS
from ingest.validation import DeviceInfo, validate
from ioc.errors import PayloadError
from ioc.kinds import MetricSpec, load_kinds
from ioc.records import HardwareClaim, Measurement, Record
from ioc.settings import Settings
from ioc.topics import TOPIC_FORMS
from tests.support.decoding import BOARD, CANONICAL_CASES, JPEG, NOW, T0_EPOCH, js, m
from tests.support.vendor_cases import SC_REPORT, VENDOR_CASES

KINDS = load_kinds()
SETTINGS = Settings()
CASES = CANONICAL_CASES + VENDOR_CASES


def assert_same(actual: list[Record], expected: list[Record]) -> None:
    """Records equal field by field, floats to 1e-12 relative."""
    assert len(actual) == len(expected), actual
    for got, want in zip(actual, expected, strict=True):
        assert type(got) is type(want), got
        for f in fields(want):
            a, b = getattr(got, f.name), getattr(want, f.name)
            if isinstance(b, float):
                assert type(a) is float and a == pytest.approx(b, rel=1e-12), (f.name, got)
            else:
                assert a == b, (f.name, got)
        assert got.time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("topic", "payload", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decodes_exactly(topic: str, payload: bytes, kind: str, expected: list[Record]) -> None:
    r = route(topic)
    records = decode(r, payload, NOW)
    assert_same(records, expected)
    device = DeviceInfo(r.device_id, kind, r.format, hardware_id=BOARD)
    stored = [rec for rec in records if not isinstance(rec, HardwareClaim)]
    assert validate(r, records, device, KINDS, SETTINGS, NOW) == stored


def test_every_format_has_a_case() -> None:
    formats = {route(topic).format for _, topic, *_ in CASES}
    assert formats == {fmt.FORMAT for fmt in FORMATS}


@pytest.mark.parametrize(
    ("topic", "fmt", "device_id", "kind", "channel", "kind_hint"),
    [
        ("ioc/v1/flood/FL-BT-001/telemetry", "canonical", "FL-BT-001", "flood", "telemetry", "flood"),
        ("ioc/v1/air_quality/AQ_1/status", "canonical", "AQ_1", "air_quality", "status", "air_quality"),
        ("ioc/v1/camera/CAM-Q1-001/snapshot", "canonical", "CAM-Q1-001", "camera", "snapshot", "camera"),
        ("legacy/flood/FL-Q7-003", "legacy_flood", "FL-Q7-003", None, "telemetry", "flood"),
        ("vendor/trafficx/TR-Q1-001", "trafficx", "TR-Q1-001", None, "telemetry", "traffic"),
        ("vendor/camx/CAM-Q1-001/event", "camx", "CAM-Q1-001", None, "event", "camera"),
        ("fiware/TrafficFlowObserved/TR-1", "fiware", "TR-1", None, "telemetry", "traffic"),
        ("fiware/FloodMonitoring/FL-1", "fiware", "FL-1", None, "telemetry", "flood"),
        ("fiware/WaterObserved/FL-2", "fiware", "FL-2", None, "telemetry", "flood"),
        ("fiware/CrowdFlowObserved/CAM-1", "fiware", "CAM-1", None, "telemetry", "camera"),
        ("fiware/AirQualityObserved/AQ-1", "fiware", "AQ-1", None, "telemetry", "air"),
        ("vendor/sensorcommunity/AQ-2", "sensorcommunity", "AQ-2", None, "telemetry", "air"),
        ("ioc/v1/flood/" + "x" * 64 + "/event", "canonical", "x" * 64, "flood", "event", "flood"),
    ],
)
def test_route(topic: str, fmt: str, device_id: str, kind: str | None, channel: str, kind_hint: str) -> None:
    r = route(topic)
    assert (r.format, r.device_id, r.kind, r.channel, r.kind_hint) == (
        fmt,
        device_id,
        kind,
        channel,
        kind_hint,
    )


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("ioc/v1/flood/FL-1/telemetry/extra", "unknown_topic"),
        ("ioc/v1/flood/FL-1/metrics", "unknown_topic"),
        ("ioc/v1/Flood/FL-1/telemetry", "unknown_topic"),
        ("ioc/v2/flood/FL-1/telemetry", "unknown_topic"),
        ("ioc/v1/flood//telemetry", "bad_device_id"),
        ("ioc/v1/flood/FL 1/telemetry", "bad_device_id"),
        ("ioc/v1/flood/FL-#/telemetry", "bad_device_id"),
        ("legacy/flood/", "bad_device_id"),
        ("legacy/flood/a/b", "unknown_topic"),
        ("vendor/camx/CAM-1/snapshot", "unknown_topic"),
        ("vendor/camx/CAM-1", "unknown_topic"),
        ("fiware/Camera/CAM-1", "unknown_topic"),
        ("fiware/TrafficFlowObserved/urn:ngsi-ld:x", "bad_device_id"),
        ("", "unknown_topic"),
        ("/", "unknown_topic"),
        ("ioc/v1/flood/FL-1/telemetry\x00", "unknown_topic"),
        ("ioc/v1/flood/FL-1/telemetry\n", "unknown_topic"),
        ("legacy/flood/FL-1\n", "bad_device_id"),
        ("fiware/WaterObserved/FL-1\n", "bad_device_id"),
    ],
)
def test_route_rejects(topic: str, reason: str) -> None:
    with pytest.raises(PayloadError) as exc:
        route(topic)
    assert exc.value.reason == reason


def test_every_topic_form_of_the_contract_has_one_decoder() -> None:
    """ioc.topics holds the topic grammar; the decoders register against it, one module per form."""
    assert {fmt.FORMAT: fmt.TOPIC for fmt in FORMATS} == TOPIC_FORMS


def test_the_core_does_not_import_the_ingest() -> None:
    """Provisioning builds the broker ACL from ioc.topics alone: ioc does not depend on a feature package."""
    loaded = "' '.join(m for m in sys.modules if m.split('.')[0] == 'ingest')"
    code = f"import sys, ioc.provisioning; sys.exit({loaded} or None)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_subscriptions_cover_every_format() -> None:
    assert SUBSCRIPTIONS == tuple(form.filter for form in TOPIC_FORMS.values())
    assert SUBSCRIPTIONS == (
        "ioc/v1/+/+/+",
        "legacy/flood/+",
        "vendor/trafficx/+",
        "vendor/camx/+/event",
        "fiware/+/+",
        "vendor/sensorcommunity/+",
    )


@pytest.mark.parametrize(
    "topic",
    [
        "ioc/v1/flood/FL-1/anything",  # a device's canonical rights: ioc/v1/{kind}/{id}/+
        "ioc/v1/submarine/FL-1/telemetry",
        "legacy/flood/FL-1",
        "vendor/trafficx/TR-1",
        "vendor/camx/CAM-1/event",
        "fiware/AnyType/TR-1",
        "vendor/sensorcommunity/AQ-1",
    ],
)
def test_every_topic_a_device_may_publish_reaches_the_ingest(topic: str) -> None:
    """What the broker lets a device publish is under a subscription: it is stored or quarantined, never lost."""
    assert any(topic_matches_sub(sub, topic) for sub in SUBSCRIPTIONS)
    try:
        route(topic, KINDS)
    except PayloadError as exc:
        assert exc.reason == "unknown_topic"


@pytest.mark.parametrize(
    ("topic", "device_id"),
    [
        ("ioc/v1/flood/FL-1/rumours", "FL-1"),
        ("ioc/v1/submarine/FL-1/telemetry", "FL-1"),
        ("ioc/v1/flood/FL-1/telemetry/x", "FL-1"),
        ("ioc/v1/flood/FL 1/rumours", None),
        ("ioc/v1/flood/FL-1", None),
        ("ioc/v2/flood/FL-1/telemetry", None),
        ("legacy/flood/FL-1/x", None),
    ],
)
def test_unknown_topics_in_a_device_tree_name_the_device(topic: str, device_id: str | None) -> None:
    assert topic_device(topic) == device_id


def test_route_refuses_kinds_it_does_not_know() -> None:
    assert route("ioc/v1/flood/FL-1/telemetry", KINDS).kind == "flood"
    with pytest.raises(PayloadError) as exc:
        route("ioc/v1/submarine/FL-1/telemetry", KINDS)
    assert exc.value.reason == "unknown_topic" and "submarine" in exc.value.detail
    assert route("ioc/v1/submarine/FL-1/telemetry").kind == "submarine"  # without kinds: validation decides


def test_a_board_other_than_the_registered_one_is_refused() -> None:
    r = route("vendor/sensorcommunity/AQ-Q1-003", KINDS)
    records = decode(r, js(SC_REPORT), NOW)
    for registered in ("99999999", None):
        with pytest.raises(PayloadError) as exc:
            validate(r, records, DeviceInfo(r.device_id, "air", r.format, hardware_id=registered), KINDS, SETTINGS, NOW)
        assert exc.value.reason == "device_mismatch" and BOARD in exc.value.detail


def test_senml_names_come_from_the_kind_registry() -> None:
    """A kind's metrics (and their short SenML names) are the names its packs may use; units convert by table."""
    kinds = load_kinds()
    noise = replace(kinds["air"], name="noise", metrics={"laeq_db": MetricSpec("laeq_db", "dB", 0, 140, "laeq")})
    r = route("ioc/v1/noise/NS-1/telemetry", {**kinds, "noise": noise})
    [rec] = decode(r, js([{"n": "laeq", "u": "dB", "t": T0_EPOCH, "v": 61.5}]), NOW)
    assert rec == m("NS-1", "laeq_db", 61.5)
    with pytest.raises(PayloadError) as exc:
        decode(r, js([{"n": "laeq", "u": "dBA", "t": T0_EPOCH, "v": 61.5}]), NOW)
    assert exc.value.reason == "bad_unit"
    with pytest.raises(PayloadError) as exc:
        decode(r, js([{"n": "water_level", "u": "m", "t": T0_EPOCH, "v": 1}]), NOW)
    assert exc.value.reason == "unknown_metric"


def test_limits_follow_settings() -> None:
    assert DEFAULT_LIMITS == Limits.from_settings(Settings())
    custom = Settings(ingest_max_payload_bytes=1024, ingest_max_json_depth=3, ingest_max_snapshot_bytes=2048)
    limits = Limits.from_settings(custom)
    r = route("ioc/v1/flood/FL-BT-001/telemetry")
    nested = b'{"ts": 1795244400, "metrics": {"water_level_cm": 1}, "x": {"y": {"z": {}}}}'
    assert decode(r, nested, NOW)  # depth 4 passes the default limit of 8
    with pytest.raises(PayloadError, match="too_deep"):
        decode(r, nested, NOW, limits)
    with pytest.raises(PayloadError, match="oversized"):
        decode(r, b" " * 1025, NOW, limits)
    snap = route("ioc/v1/camera/CAM-1/snapshot")
    assert decode(snap, JPEG, NOW, limits)
    with pytest.raises(PayloadError, match="oversized"):
        decode(snap, JPEG[:-2] + b"\x00" * 2048 + b"\xff\xd9", NOW, limits)


def test_received_at_is_normalised_to_utc() -> None:
    r = route("ioc/v1/flood/FL-BT-001/status")
    local = NOW.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+07:00").tzinfo)
    [status] = decode(r, b"online", local)
    assert status.time == NOW and status.time.tzinfo is UTC
    with pytest.raises(ValueError):
        decode(r, b"online", NOW.replace(tzinfo=None))


def test_senml_relative_time_uses_received_at() -> None:
    r = route("ioc/v1/flood/FL-BT-001/telemetry")
    [rec] = decode(r, b'[{"n": "water_level", "u": "cm", "v": 1}]', NOW)
    assert rec.time == NOW


def test_nan_never_reaches_a_record() -> None:
    r = route("ioc/v1/flood/FL-BT-001/telemetry")
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1" + b"0" * 400):
        with pytest.raises(PayloadError) as exc:
            decode(r, b'{"ts": 1795244400, "metrics": {"water_level_cm": %s}}' % literal, NOW)
        assert exc.value.reason == "non_finite"
    [big] = decode(r, b'{"ts": 1795244400, "metrics": {"a": 1e308}}', NOW)
    assert isinstance(big, Measurement) and math.isfinite(big.value)

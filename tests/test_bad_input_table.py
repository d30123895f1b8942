"""Nasty payloads through route + decode + validate: each is refused with one specific reason code."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.decoders import decode, route
from ingest.validation import DeviceInfo, validate
from ioc.errors import PayloadError
from ioc.kinds import load_kinds
from ioc.reasons import Reason
from ioc.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 21, 7, 10, tzinfo=UTC)
TS = 1795244400  # 2026-11-21T07:00:00Z
KINDS = load_kinds()
SETTINGS = Settings()
DEVICES = {
    d.device_id: d
    for d in (
        DeviceInfo("FL-BT-001", "flood", "canonical"),
        DeviceInfo("FL-Q7-003", "flood", "legacy_flood"),
        DeviceInfo("TR-Q1-001", "traffic", "trafficx"),
        DeviceInfo("TR-Q3-002", "traffic", "fiware"),
        DeviceInfo("CAM-Q1-001", "camera", "camx"),
        DeviceInfo("FL-OFF-001", "flood", "canonical", enabled=False),
        DeviceInfo("AQ-Q1-001", "air", "sensorcommunity", hardware_id="13463510"),
        DeviceInfo("AQ-Q3-001", "air", "fiware"),
    )
}
TEL = "ioc/v1/flood/FL-BT-001/telemetry"
EVT = "ioc/v1/camera/CAM-Q1-001/event"
TRX = "vendor/trafficx/TR-Q1-001"
CAMX = "vendor/camx/CAM-Q1-001/event"
TFO = "fiware/TrafficFlowObserved/TR-Q3-002"
LEGACY = "legacy/flood/FL-Q7-003"
SC = "vendor/sensorcommunity/AQ-Q1-001"
AQO = "fiware/AirQualityObserved/AQ-Q3-001"


def tel(metrics: str = '{"water_level_cm": 12.5}', ts: str = str(TS), extra: str = "") -> bytes:
    return f'{{"ts": {ts}, "seq": 1, "metrics": {metrics}{extra}}}'.encode()


def evt(**overrides: object) -> bytes:
    doc: dict[str, object] = {"ts": TS, "type": "traffic.accident", "severity": "high", "confidence": 0.9}
    doc.update(overrides)
    return json.dumps(doc).encode()


def trx(lanes: object = None, speed: float = 23.5) -> bytes:
    lanes = [{"lane": 1, "count": 42, "speed": speed, "occ": 0.31}] if lanes is None else lanes
    return json.dumps({"ctrl": "TR-Q1-001", "time": "2026-11-21T07:05:00Z", "period": 60, "lanes": lanes}).encode()


def camx(**overrides: object) -> bytes:
    doc: dict[str, object] = {
        "Source": "CAM-Q1-001",
        "UtcTime": "2026-11-21T07:05:00Z",
        "Rule": "Accident",
        "Confidence": 87,
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


def sc(values: object = None, board: object = "13463510") -> bytes:
    values = [{"value_type": "SDS_P2", "value": "7.30"}] if values is None else values
    return json.dumps({"esp8266id": board, "sensordatavalues": values}).encode()


def aqo(**overrides: object) -> bytes:
    doc: dict[str, object] = {
        "id": "urn:ngsi-ld:AirQualityObserved:AQ-Q3-001",
        "type": "AirQualityObserved",
        "dateObserved": "2026-11-21T07:05:00Z",
        "pm25": 31.0,
    }
    doc.update({k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            doc.pop(k, None)
    return json.dumps(doc).encode()


def tfo(**overrides: object) -> bytes:
    doc: dict[str, object] = {
        "id": "urn:ngsi-ld:TrafficFlowObserved:TR-Q3-002",
        "type": "TrafficFlowObserved",
        "dateObserved": "2026-11-21T07:05:00Z",
        "intensity": 12,
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"

# (id, topic, payload, expected reason)
ROWS: list[tuple[str, str, bytes, str]] = [
    # JSON syntax and encoding
    ("truncated-json", TEL, tel()[:-7], "bad_json"),
    ("trailing-garbage", TEL, tel() + b" {}", "bad_json"),
    ("single-quotes", TEL, b"{'ts': 1795244400}", "bad_json"),
    ("nan", TEL, tel('{"water_level_cm": NaN}'), "non_finite"),
    ("infinity", TEL, tel('{"water_level_cm": Infinity}'), "non_finite"),
    ("minus-infinity", TEL, tel('{"water_level_cm": -Infinity}'), "non_finite"),
    ("1e400", TEL, tel('{"water_level_cm": 1e400}'), "non_finite"),
    ("huge-integer", TEL, tel('{"water_level_cm": 1' + "0" * 400 + "}"), "non_finite"),
    ("5000-digit-integer", TEL, tel('{"water_level_cm": 1' + "0" * 5000 + "}"), "bad_json"),
    ("duplicate-top-level-key", TEL, tel(extra=f', "ts": {TS}'), "duplicate_key"),
    ("duplicate-metric", TEL, tel('{"water_level_cm": 1, "water_level_cm": 400}'), "duplicate_key"),
    ("100-deep-nesting", TEL, tel(extra=f', "x": {nested(100)}'), "too_deep"),
    ("100000-deep-nesting", TEL, nested(30000).encode(), "too_deep"),
    (
        "deep-event-attrs",
        EVT,
        evt(attrs={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}),
        "too_deep",
    ),
    ("70-KiB", TEL, tel(extra=', "pad": "' + "x" * 70 * 1024 + '"'), "oversized"),
    (
        "snapshot-600-KiB",
        "ioc/v1/camera/CAM-Q1-001/snapshot",
        JPEG[:-2] + bytes(600 * 1024) + b"\xff\xd9",
        "oversized",
    ),
    ("latin-1", TEL, tel(extra=', "note": "café"').decode().encode("latin-1"), "bad_encoding"),
    ("utf-16-bom", TEL, tel().decode().encode("utf-16"), "bad_encoding"),
    ("utf-8-bom", TEL, b"\xef\xbb\xbf" + tel(), "bad_encoding"),
    ("nul-byte", TEL, tel() + b"\x00", "bad_encoding"),
    (
        "overlong-utf8",
        TEL,
        tel(extra=', "note": "\xc0\xaf"').replace(b"\xc3\x80\xc2\xaf", b"\xc0\xaf"),
        "bad_encoding",
    ),
    ("lone-surrogate-in-attrs", EVT, evt(attrs={"note": "\ud800"}), "bad_encoding"),
    ("nul-escape-in-attrs", EVT, evt(attrs={"note": "a\u0000b"}), "bad_encoding"),
    # Shape
    ("empty-payload", TEL, b"", "empty"),
    ("whitespace-payload", TEL, b"  \n", "bad_json"),
    ("empty-metrics", TEL, tel("{}"), "empty"),
    ("metrics-not-object", TEL, tel("[12.5]"), "bad_schema"),
    ("metrics-missing", TEL, f'{{"ts": {TS}}}'.encode(), "bad_schema"),
    ("telemetry-is-string", TEL, b'"online"', "bad_schema"),
    ("telemetry-array-of-numbers", TEL, b"[1, 2, 3]", "bad_senml"),
    ("metric-string", TEL, tel('{"water_level_cm": "12.5"}'), "bad_schema"),
    ("metric-bool", TEL, tel('{"water_level_cm": true}'), "bad_schema"),
    ("metric-null", TEL, tel('{"water_level_cm": null}'), "bad_schema"),
    ("metric-object", TEL, tel('{"water_level_cm": {"v": 1}}'), "bad_schema"),
    ("seq-negative", TEL, tel(extra="").replace(b'"seq": 1', b'"seq": -1'), "bad_schema"),
    ("seq-bool", TEL, tel().replace(b'"seq": 1', b'"seq": true'), "bad_schema"),
    ("seq-fraction", TEL, tel().replace(b'"seq": 1', b'"seq": 1.5'), "bad_schema"),
    ("ts-missing", TEL, b'{"metrics": {"water_level_cm": 1}}', "bad_schema"),
    ("ts-bool", TEL, tel(ts="true"), "bad_schema"),
    # Metric semantics
    ("unknown-metric", TEL, tel('{"water_level_cm": 1, "temperature_c": 31}'), "unknown_metric"),
    ("metric-of-another-kind", TEL, tel('{"vehicle_count": 3}'), "unknown_metric"),
    ("water-level-below-range", TEL, tel('{"water_level_cm": -80}'), "out_of_range"),
    ("battery-above-range", TEL, tel('{"battery_pct": 100.5}'), "out_of_range"),
    ("speed-900-kmh", TRX, trx(speed=900), "out_of_range"),
    # Time
    ("ts-2099", TEL, tel(ts='"2099-01-01T00:00:00Z"'), "timestamp_out_of_window"),
    ("ts-1990", TEL, tel(ts="631152000"), "timestamp_out_of_window"),
    ("ts-ten-minutes-ahead", TEL, tel(ts=str(TS + 20 * 60)), "timestamp_out_of_window"),
    ("ts-year-9999-offset", TEL, tel(ts='"9999-12-31T23:59:59-23:59"'), "timestamp_out_of_window"),
    ("ts-negative-huge", TEL, tel(ts="-1e300"), "timestamp_out_of_window"),
    ("ts-ms-epoch", TEL, tel(ts=str(TS * 1000)), "bad_schema"),
    ("ts-naive", TEL, tel(ts='"2026-11-21T07:00:00"'), "bad_schema"),
    ("ts-date-only", TEL, tel(ts='"2026-11-21"'), "bad_schema"),
    ("ts-month-13", TEL, tel(ts='"2026-13-21T07:00:00Z"'), "bad_schema"),
    ("ts-iso-basic", TEL, tel(ts='"20261121T070000Z"'), "bad_schema"),
    # Identity
    ("payload-device-differs", TEL, tel(extra=', "device_id": "FL-BT-002"'), "device_mismatch"),
    ("payload-device-not-string", TEL, tel(extra=', "device_id": 7'), "bad_schema"),
    ("topic-kind-differs", "ioc/v1/traffic/FL-BT-001/telemetry", tel(), "kind_mismatch"),
    ("unknown-device", "ioc/v1/flood/FL-NEW-001/telemetry", tel(), "unknown_device"),
    ("disabled-device", "ioc/v1/flood/FL-OFF-001/telemetry", tel(), "device_disabled"),
    ("topic-plus", "ioc/v1/flood/+/telemetry", tel(), "bad_device_id"),
    ("topic-65-char-id", f"ioc/v1/flood/{'F' * 65}/telemetry", tel(), "bad_device_id"),
    ("topic-unicode-id", "ioc/v1/flood/FL-BT-ÔÔ1/telemetry", tel(), "bad_device_id"),
    ("unknown-topic-root", "sensors/flood/FL-BT-001", tel(), "unknown_topic"),
    ("unknown-channel", "ioc/v1/flood/FL-BT-001/config", tel(), "unknown_topic"),
    ("unknown-kind", "ioc/v1/submarine/FL-BT-001/telemetry", tel(), "unknown_topic"),
    ("topic-one-level-deeper", "ioc/v1/flood/FL-BT-001/telemetry/x", tel(), "unknown_topic"),
    # SenML
    (
        "senml-bn-other-device",
        TEL,
        b'[{"bn": "urn:dev:ioc:FL-XX-999:", "bt": 1795244400, "n": "water_level", "v": 0.1, "u": "m"}]',
        "device_mismatch",
    ),
    (
        "senml-unit-furlong",
        TEL,
        b'[{"bn": "urn:dev:ioc:FL-BT-001:", "bt": 1795244400, "n": "water_level", "u": "furlong", "v": 1}]',
        "bad_unit",
    ),
    ("senml-no-unit-for-level", TEL, b'[{"bt": 1795244400, "n": "water_level", "v": 1}]', "bad_unit"),
    (
        "senml-unknown-name",
        TEL,
        b'[{"bt": 1795244400, "n": "temperature", "u": "Cel", "v": 31}]',
        "unknown_metric",
    ),
    (
        "senml-string-value",
        TEL,
        b'[{"bt": 1795244400, "n": "water_level", "u": "m", "vs": "high"}]',
        "bad_senml",
    ),
    (
        "senml-bad-bn",
        TEL,
        b'[{"bn": "urn:dev:ioc:FL-BT-001", "n": "water_level", "u": "m", "v": 1}]',
        "bad_senml",
    ),
    ("senml-must-understand", TEL, b'[{"n": "water_level", "u": "m", "v": 1, "crit_": 1}]', "bad_senml"),
    ("senml-record-not-object", TEL, b'[{"n": "water_level", "u": "m", "v": 1}, 3]', "bad_senml"),
    ("senml-empty-pack", TEL, b"[]", "empty"),
    ("senml-bool-value", TEL, b'[{"n": "water_level", "u": "m", "v": false}]', "bad_schema"),
    # Legacy CSV
    ("csv-3-columns", LEGACY, b"FL-Q7-003,1795244400,125", "bad_csv"),
    ("csv-text-in-number", LEGACY, b"FL-Q7-003,1795244400,high,2.5,3.71", "bad_csv"),
    ("csv-underscore-number", LEGACY, b"FL-Q7-003,1795244400,1_25,2.5,3.71", "bad_csv"),
    ("csv-nan", LEGACY, b"FL-Q7-003,1795244400,nan,2.5,3.71", "non_finite"),
    ("csv-other-station", LEGACY, b"FL-Q7-004,1795244400,125,2.5,3.71", "device_mismatch"),
    (
        "csv-second-line-bad",
        LEGACY,
        b"FL-Q7-003,1795244400,125,2.5,3.71\nFL-Q7-003,1795244400,125,2.5",
        "bad_csv",
    ),
    ("csv-blank", LEGACY, b"\r\n\r\n", "empty"),
    ("csv-json", LEGACY, tel(), "bad_csv"),
    # Traffic controller
    ("trafficx-lanes-not-list", TRX, trx(lanes={"lane": 1}), "bad_schema"),
    ("trafficx-no-lanes", TRX, trx(lanes=[]), "empty"),
    ("trafficx-duplicate-lane", TRX, trx(lanes=[{"lane": 1, "count": 0, "occ": 0}] * 2), "bad_schema"),
    ("trafficx-speed-missing", TRX, trx(lanes=[{"lane": 1, "count": 3, "occ": 0.1}]), "bad_schema"),
    (
        "trafficx-occupancy-150",
        TRX,
        trx(lanes=[{"lane": 1, "count": 3, "speed": 20, "occ": 1.5}]),
        "out_of_range",
    ),
    ("trafficx-negative-count", TRX, trx(lanes=[{"lane": 1, "count": -3, "occ": 0.1}]), "out_of_range"),
    # Camera analytics
    ("camx-rule-unknown", CAMX, camx(Rule="Fire"), "bad_event"),
    ("camx-rule-not-string", CAMX, camx(Rule=["Accident"]), "bad_event"),
    ("camx-confidence-150", CAMX, camx(Confidence=150), "bad_event"),
    ("camx-confidence-string", CAMX, camx(Confidence="87"), "bad_schema"),
    ("camx-count-negative", CAMX, camx(Count=-1), "bad_schema"),
    ("camx-other-source", CAMX, camx(Source="CAM-Q1-002"), "device_mismatch"),
    # FIWARE
    ("fiware-id-other-device", TFO, tfo(id="urn:ngsi-ld:TrafficFlowObserved:TR-Q3-003"), "device_mismatch"),
    ("fiware-unknown-type-topic", "fiware/WeatherObserved/TR-Q3-002", tfo(), "unknown_topic"),
    ("fiware-type-differs", TFO, tfo(type="WaterObserved"), "bad_schema"),
    ("fiware-id-not-urn", TFO, tfo(id="TR-Q3-002"), "bad_schema"),
    ("fiware-no-attributes", TFO, tfo(intensity=None), "empty"),
    (
        "fiware-bad-unit-code",
        TFO,
        tfo(averageVehicleSpeed={"type": "Property", "value": 3, "unitCode": "MPH"}),
        "bad_unit",
    ),
    ("fiware-property-without-value", TFO, tfo(intensity={"type": "Property"}), "bad_schema"),
    ("fiware-no-date", TFO, tfo(dateObserved=None), "bad_schema"),
    # Sensor.Community and FIWARE AirQualityObserved
    ("sc-other-board", SC, sc(board="99999999"), "device_mismatch"),
    ("sc-no-board", SC, b'{"sensordatavalues": [{"value_type": "SDS_P2", "value": "7.3"}]}', "bad_schema"),
    ("sc-value-words", SC, sc([{"value_type": "SDS_P1", "value": "twelve"}]), "bad_schema"),
    ("sc-value-nan", SC, sc([{"value_type": "SDS_P1", "value": "nan"}]), "non_finite"),
    ("sc-values-not-a-list", SC, sc({"SDS_P1": "12.8"}), "bad_schema"),
    ("sc-only-diagnostics", SC, sc([{"value_type": "samples", "value": "880142"}]), "empty"),
    (
        "sc-pm25-twice",
        SC,
        sc([{"value_type": "SDS_P2", "value": "7"}, {"value_type": "PMS_P2", "value": "8"}]),
        "bad_schema",
    ),
    ("sc-humidity-150", SC, sc([{"value_type": "DHT22_humidity", "value": "150"}]), "out_of_range"),
    (
        "aqo-pm25-in-ppm",
        AQO,
        aqo(pm25={"type": "Number", "value": 3, "metadata": {"unitCode": {"value": "59"}}}),
        "bad_unit",
    ),
    ("aqo-humidity-percent-as-ratio", AQO, aqo(relativeHumidity=72), "out_of_range"),
    ("aqo-no-date", AQO, aqo(dateObserved=None), "bad_schema"),
    ("aqo-nothing-measured", AQO, aqo(pm25=None, airQualityIndex=80), "empty"),
    # Events, status, snapshots
    ("event-severity-urgent", EVT, evt(severity="urgent"), "bad_event"),
    ("event-severity-number", EVT, evt(severity=3), "bad_event"),
    ("event-type-Accident", EVT, evt(type="Accident"), "bad_event"),
    ("event-type-three-parts", EVT, evt(type="traffic.accident.minor"), "bad_event"),
    ("event-type-trailing-newline", EVT, evt(type="traffic.accident\n"), "bad_event"),
    ("ts-trailing-newline", TEL, tel(ts='"2026-11-21T07:00:00Z\\n"'), "bad_schema"),
    ("event-confidence-1.5", EVT, evt(confidence=1.5), "bad_event"),
    ("event-confidence-bool", EVT, evt(confidence=True), "bad_schema"),
    ("event-attrs-list", EVT, evt(attrs=[1, 2]), "bad_schema"),
    ("event-type-missing", EVT, b'{"ts": 1795244400, "severity": "high"}', "bad_schema"),
    ("status-maybe", "ioc/v1/flood/FL-BT-001/status", b"maybe", "bad_status"),
    ("status-json", "ioc/v1/flood/FL-BT-001/status", b'"online"', "bad_status"),
    ("status-uppercase", "ioc/v1/flood/FL-BT-001/status", b"ONLINE", "bad_status"),
    ("status-empty", "ioc/v1/flood/FL-BT-001/status", b"", "empty"),
    ("snapshot-png", "ioc/v1/camera/CAM-Q1-001/snapshot", PNG, "bad_snapshot"),
    ("snapshot-truncated-jpeg", "ioc/v1/camera/CAM-Q1-001/snapshot", JPEG[:-2], "bad_snapshot"),
]


def run(topic: str, payload: bytes) -> None:
    r = route(topic, KINDS)
    records = decode(r, payload, NOW)
    validate(r, records, DEVICES.get(r.device_id), KINDS, SETTINGS, NOW)


@pytest.mark.parametrize(("topic", "payload", "reason"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_refused_with_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as exc:
        run(topic, payload)
    assert exc.value.reason == reason, exc.value
    detail = exc.value.detail
    assert detail and len(detail) <= 200 and detail.isprintable(), detail


def test_table_is_big_and_distinct() -> None:
    assert len(ROWS) >= 30
    assert len({row[0] for row in ROWS}) == len(ROWS)
    assert len({(row[1], row[2]) for row in ROWS}) == len(ROWS)


# Reasons the ingest itself gives, not a payload: each has its own test.
NOT_FROM_PAYLOADS = {
    Reason.RATE_LIMITED: "tests/test_ratelimit.py",
    Reason.INTERNAL_ERROR: "tests/test_ingest_quarantine.py::test_a_decoder_bug_is_quarantined_and_counted",
    Reason.DB_REJECTED: "tests/test_ingest_quarantine.py::test_a_row_the_database_refuses_is_quarantined",
}
CODE_DIRS = ("ingest", "ioc")  # the code that quarantines (simulators name their faults alike)


def test_every_reason_is_exercised_and_documented() -> None:
    exercised = {row[3] for row in ROWS} | set(NOT_FROM_PAYLOADS)
    assert exercised == set(Reason)
    doc = (ROOT / "docs" / "devices.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.MULTILINE))
    assert documented == set(Reason)


def _reasons_in_code() -> tuple[set[str], list[str]]:
    """Every ``Reason.X`` the quarantining code names, and every reason it spells as a string instead."""
    values = {r.value for r in Reason}
    named: set[str] = set()
    literal: list[str] = []
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "ioc" / "reasons.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Reason":
                    named.add(node.attr)
                elif isinstance(node, ast.Constant) and node.value in values:
                    literal.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    return named, literal


def test_the_code_emits_exactly_the_listed_reasons() -> None:
    """Every reason the code gives comes from ioc.reasons.Reason, and every listed reason is given somewhere."""
    named, literal = _reasons_in_code()
    assert not literal, f"reasons spelled as strings instead of Reason members: {literal}"
    assert named == {r.name for r in Reason}
    with pytest.raises(ValueError):
        PayloadError("made_up_reason", "x")  # type: ignore[arg-type]


def test_details_do_not_echo_long_input() -> None:
    long_id = "X" * 5000
    with pytest.raises(PayloadError) as exc:
        run(TEL, tel(extra=f', "device_id": "{long_id}"'))
    assert exc.value.reason == "device_mismatch"
    assert len(exc.value.detail) < 200

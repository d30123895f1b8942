"""Decoder test cases of the canonical and SenML forms, and the times and helpers every case uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ioc.records import Event, Measurement, Record, Snapshot, StatusChange

NOW = datetime(2026, 11, 21, 7, 10, tzinfo=UTC)
T0 = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
T0_EPOCH = 1795244400  # 2026-11-21T07:00:00Z
T5 = datetime(2026, 11, 21, 7, 5, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"
BOARD = "13463510"  # the esp8266id every Sensor.Community case's device is registered with


def m(
    device: str, metric: str, value: float, *, time: datetime = T0, part: str = "", seq: int | None = None
) -> Measurement:
    """A measurement as a decoder should return it (at T0 unless told)."""
    return Measurement(time, device, metric, value, part, seq)


def js(doc: object) -> bytes:
    """A JSON payload."""
    return json.dumps(doc).encode()


# (id, topic, payload, registry kind, expected records)
CANONICAL_CASES: list[tuple[str, str, bytes, str, list[Record]]] = [
    (
        "canonical-telemetry-air",
        "ioc/v1/air/AQ-Q1-001/telemetry",
        js({"ts": "2026-11-21T07:00:00Z", "seq": 3, "metrics": {"pm25_ugm3": 41.2, "humidity_pct": 80}}),
        "air",
        [m("AQ-Q1-001", "pm25_ugm3", 41.2, seq=3), m("AQ-Q1-001", "humidity_pct", 80.0, seq=3)],
    ),
    (
        "senml-air-units",
        "ioc/v1/air/AQ-Q1-002/telemetry",
        js(
            [
                {"bn": "urn:dev:ioc:AQ-Q1-002:", "bt": T0_EPOCH, "n": "pm25", "u": "ug/m3", "v": 35.2},
                {"n": "co", "u": "mg/m3", "v": 0.85},
                {"n": "temperature", "u": "Cel", "v": 30.5},
                {"n": "humidity", "u": "%RH", "v": 81},
                {"n": "no2_ugm3", "v": 40},
            ]
        ),
        "air",
        [
            m("AQ-Q1-002", "pm25_ugm3", 35.2),
            m("AQ-Q1-002", "co_ugm3", 850.0),
            m("AQ-Q1-002", "temperature_c", 30.5),
            m("AQ-Q1-002", "humidity_pct", 81.0),
            m("AQ-Q1-002", "no2_ugm3", 40.0),
        ],
    ),
    (
        "canonical-telemetry",
        "ioc/v1/flood/FL-BT-001/telemetry",
        js(
            {
                "ts": "2026-11-21T07:00:00Z",
                "seq": 17,
                "device_id": "FL-BT-001",
                "metrics": {"water_level_cm": 12.5, "rainfall_mm_h": 3, "battery_pct": 88},
            }
        ),
        "flood",
        [
            m("FL-BT-001", "water_level_cm", 12.5, seq=17),
            m("FL-BT-001", "rainfall_mm_h", 3.0, seq=17),
            m("FL-BT-001", "battery_pct", 88.0, seq=17),
        ],
    ),
    (
        "canonical-telemetry-offset-and-fraction",
        "ioc/v1/traffic/TR-Q1-001/telemetry",
        b'{"ts": "2026-11-21T14:00:00.250+07:00", "metrics": {"vehicle_count": 7}}',
        "traffic",
        [m("TR-Q1-001", "vehicle_count", 7.0, time=T0 + timedelta(milliseconds=250))],
    ),
    (
        "canonical-telemetry-epoch-float-lowercase-t",
        "ioc/v1/flood/FL-BT-001/telemetry",
        b'  {"ts": 1795244400.5, "seq": 0, "metrics": {"water_level_cm": -3}}\n',
        "flood",
        [m("FL-BT-001", "water_level_cm", -3.0, time=T0 + timedelta(seconds=0.5), seq=0)],
    ),
    (
        "canonical-telemetry-rfc3339-lowercase",
        "ioc/v1/flood/FL-BT-001/telemetry",
        b'{"ts": "2026-11-21t07:00:00z", "metrics": {"battery_pct": 100}}',
        "flood",
        [m("FL-BT-001", "battery_pct", 100.0)],
    ),
    (
        "senml-pack",
        "ioc/v1/flood/FL-BT-001/telemetry",
        js(
            [
                {"bn": "urn:dev:ioc:FL-BT-001:", "bt": T0_EPOCH, "n": "water_level", "u": "m", "v": 0.125},
                {"n": "rainfall", "u": "mm/h", "v": 12},
                {"n": "battery", "u": "%", "v": 88},
                {"n": "water_level", "u": "mm", "v": 130, "t": 60},
                {"n": "rainfall", "u": "m/s", "v": 1e-6, "t": 60},
                {"n": "battery", "u": "/", "v": 0.5, "t": 60},
            ]
        ),
        "flood",
        [
            m("FL-BT-001", "water_level_cm", 12.5),
            m("FL-BT-001", "rainfall_mm_h", 12.0),
            m("FL-BT-001", "battery_pct", 88.0),
            m("FL-BT-001", "water_level_cm", 13.0, time=T0 + timedelta(minutes=1)),
            m("FL-BT-001", "rainfall_mm_h", 3.6, time=T0 + timedelta(minutes=1)),
            m("FL-BT-001", "battery_pct", 50.0, time=T0 + timedelta(minutes=1)),
        ],
    ),
    (
        "senml-relative-time-base-unit-base-value-canonical-names",
        "ioc/v1/traffic/TR-Q1-001/telemetry",
        js(
            [
                {"bn": "urn:dev:ioc:TR-Q1-001:", "bu": "m/s", "n": "avg_speed", "v": 10, "t": -60},
                {"n": "vehicle_count", "u": "count", "v": 40},
                {"bv": 1, "n": "interval_s", "u": "s", "v": 59},
                {"n": "occupancy_pct", "u": "%", "v": -1, "bv": 21},
            ]
        ),
        "traffic",
        [
            m("TR-Q1-001", "avg_speed_kmh", 36.0, time=NOW - timedelta(minutes=1)),
            m("TR-Q1-001", "vehicle_count", 40.0, time=NOW),
            m("TR-Q1-001", "interval_s", 60.0, time=NOW),
            m("TR-Q1-001", "occupancy_pct", 20.0, time=NOW),
        ],
    ),
    (
        "senml-without-bn",
        "ioc/v1/camera/CAM-Q1-001/telemetry",
        b'[{"n": "people_count", "u": "count", "v": 12, "bt": 1795244400}]',
        "camera",
        [m("CAM-Q1-001", "people_count", 12.0)],
    ),
    (
        "canonical-event",
        "ioc/v1/camera/CAM-Q1-001/event",
        js(
            {
                "ts": T0_EPOCH + 300,
                "type": "traffic.accident",
                "severity": "high",
                "confidence": 0.87,
                "device_id": "CAM-Q1-001",
                "attrs": {"lane": 2, "plates": ["51F-123.45"], "note": "Quận 1"},
            }
        ),
        "camera",
        [
            Event(
                T5,
                "CAM-Q1-001",
                "traffic.accident",
                "high",
                0.87,
                {"lane": 2, "plates": ["51F-123.45"], "note": "Quận 1"},
            )
        ],
    ),
    (
        "canonical-event-defaults",
        "ioc/v1/flood/FL-BT-001/event",
        b'{"ts": "2026-11-21T07:05:00Z", "type": "flood.threshold_crossed", "severity": "info"}',
        "flood",
        [Event(T5, "FL-BT-001", "flood.threshold_crossed", "info", 1.0, {})],
    ),
    (
        "canonical-status-online",
        "ioc/v1/flood/FL-BT-001/status",
        b"online\n",
        "flood",
        [StatusChange(NOW, "FL-BT-001", True)],
    ),
    (
        "canonical-status-offline",
        "ioc/v1/traffic/TR-Q1-001/status",
        b"offline",
        "traffic",
        [StatusChange(NOW, "TR-Q1-001", False)],
    ),
    (
        "canonical-snapshot",
        "ioc/v1/camera/CAM-Q1-001/snapshot",
        JPEG,
        "camera",
        [Snapshot(NOW, "CAM-Q1-001", JPEG)],
    ),
]

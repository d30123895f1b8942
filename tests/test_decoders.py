"""Every format decodes to exactly the expected records (units converted, UTC times, parts, seq)."""

from __future__ import annotations

import json
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
from ioc.records import Event, HardwareClaim, Measurement, Record, Snapshot, StatusChange
from ioc.settings import Settings
from ioc.topics import TOPIC_FORMS

NOW = datetime(2026, 11, 21, 7, 10, tzinfo=UTC)
T0 = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
T0_EPOCH = 1795244400  # 2026-11-21T07:00:00Z
T5 = datetime(2026, 11, 21, 7, 5, tzinfo=UTC)
KINDS = load_kinds()
SETTINGS = Settings()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"


def m(
    device: str, metric: str, value: float, *, time: datetime = T0, part: str = "", seq: int | None = None
) -> Measurement:
    return Measurement(time, device, metric, value, part, seq)


def js(doc: object) -> bytes:
    return json.dumps(doc).encode()


TRAFFICX = {
    "ctrl": "TR-Q1-001",
    "time": "2026-11-21T14:05:00+07:00",
    "period": 60,
    "lanes": [
        {"lane": 1, "count": 42, "speed": 23.5, "occ": 0.31},
        {"lane": 2, "count": 18, "speed": 31.0, "occ": 0.12},
        {"lane": 3, "count": 0, "occ": 0.0},
    ],
}
TFO_KEYVALUES = {
    "id": "urn:ngsi-ld:TrafficFlowObserved:TR-Q3-002",
    "type": "TrafficFlowObserved",
    "@context": ["https://smartdatamodels.org/context.jsonld"],
    "dateObserved": "2026-11-21T07:05:00Z",
    "dateObservedFrom": "2026-11-21T07:04:00Z",
    "dateObservedTo": "2026-11-21T07:05:00Z",
    "intensity": 42,
    "averageVehicleSpeed": 27.5,
    "occupancy": 0.18,
    "congested": False,
}
TFO_NORMALIZED = {
    "id": "urn:ngsi-ld:TrafficFlowObserved:TR-Q3-002",
    "type": "TrafficFlowObserved",
    "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-11-21T07:05:00Z"}},
    "dateObservedFrom": {
        "type": "Property",
        "value": {"@type": "DateTime", "@value": "2026-11-21T07:04:00Z"},
    },
    "dateObservedTo": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-11-21T07:05:00Z"}},
    "intensity": {"type": "Property", "value": 42},
    "averageVehicleSpeed": {"type": "Property", "value": 27.5, "unitCode": "KMH"},
    "occupancy": {"type": "Property", "value": 0.18},
    "congested": {"type": "Property", "value": False},
}
BOARD = "13463510"  # the esp8266id every Sensor.Community case's device is registered with
SC_REPORT = {
    "esp8266id": BOARD,
    "software_version": "NRZ-2020-133",
    "sensordatavalues": [
        {"value_type": "SDS_P1", "value": "12.80"},
        {"value_type": "SDS_P2", "value": "7.30"},
        {"value_type": "BME280_temperature", "value": "31.2"},
        {"value_type": "BME280_humidity", "value": "78.1"},
        {"value_type": "BME280_pressure", "value": "100720.5"},
        {"value_type": "samples", "value": "880142"},
        {"value_type": "signal", "value": "-71"},
    ],
}
AQO_V2_NORMALIZED = {
    "id": "urn:ngsi-ld:AirQualityObserved:AQ-Q3-001",
    "type": "AirQualityObserved",
    "dateObserved": {"type": "DateTime", "value": "2026-11-21T14:00:00+07:00"},
    "pm25": {"type": "Number", "value": 38.5, "metadata": {"unitCode": {"value": "GQ"}}},
    "pm10": {"type": "Number", "value": 61},
    "no2": {"type": "Number", "value": 42.3, "metadata": {"unitCode": {"value": "GQ"}}},
    "o3": {"type": "Number", "value": 55},
    "co": {"type": "Number", "value": 0.9, "metadata": {"unitCode": {"value": "GP"}}},
    "so2": {"type": "Number", "value": 8.4},
    "temperature": {"type": "Number", "value": 31.5},
    "relativeHumidity": {"type": "Number", "value": 0.72},
    "airQualityLevel": {"type": "Text", "value": "moderate"},
    "location": {"type": "geo:json", "value": {"type": "Point", "coordinates": [106.686, 10.783]}},
}
AQO_RECORDS: list[Record] = [
    m("AQ-Q3-001", "pm25_ugm3", 38.5),
    m("AQ-Q3-001", "pm10_ugm3", 61.0),
    m("AQ-Q3-001", "no2_ugm3", 42.3),
    m("AQ-Q3-001", "o3_ugm3", 55.0),
    m("AQ-Q3-001", "co_ugm3", 900.0),
    m("AQ-Q3-001", "so2_ugm3", 8.4),
    m("AQ-Q3-001", "temperature_c", 31.5),
    m("AQ-Q3-001", "humidity_pct", 72.0),
]
TFO_RECORDS: list[Record] = [
    m("TR-Q3-002", "vehicle_count", 42.0, time=T5),
    m("TR-Q3-002", "avg_speed_kmh", 27.5, time=T5),
    m("TR-Q3-002", "occupancy_pct", 18.0, time=T5),
    m("TR-Q3-002", "interval_s", 60.0, time=T5),
]

# (id, topic, payload, registry kind, expected records)
CASES: list[tuple[str, str, bytes, str, list[Record]]] = [
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
        "sensorcommunity-sds011-bme280",
        "vendor/sensorcommunity/AQ-Q1-003",
        js(SC_REPORT),
        "air",
        [
            HardwareClaim(NOW, "AQ-Q1-003", BOARD),
            m("AQ-Q1-003", "pm10_ugm3", 12.8, time=NOW),
            m("AQ-Q1-003", "pm25_ugm3", 7.3, time=NOW),
            m("AQ-Q1-003", "temperature_c", 31.2, time=NOW),
            m("AQ-Q1-003", "humidity_pct", 78.1, time=NOW),
        ],
    ),
    (
        "sensorcommunity-pms-dht22-numeric-id",
        "vendor/sensorcommunity/AQ-Q1-003",
        js(
            {
                "esp8266id": int(BOARD),
                "sensordatavalues": [
                    {"value_type": "PMS_P0", "value": "20"},
                    {"value_type": "PMS_P1", "value": "55.0"},
                    {"value_type": "PMS_P2", "value": " 41 "},
                    {"value_type": "temperature", "value": "29.80"},
                    {"value_type": "humidity", "value": 88.5},
                ],
            }
        ),
        "air",
        [
            HardwareClaim(NOW, "AQ-Q1-003", BOARD),
            m("AQ-Q1-003", "pm10_ugm3", 55.0, time=NOW),
            m("AQ-Q1-003", "pm25_ugm3", 41.0, time=NOW),
            m("AQ-Q1-003", "temperature_c", 29.8, time=NOW),
            m("AQ-Q1-003", "humidity_pct", 88.5, time=NOW),
        ],
    ),
    (
        "sensorcommunity-sps30",
        "vendor/sensorcommunity/AQ-Q1-003",
        js(
            {
                "esp8266id": BOARD,
                "sensordatavalues": [
                    {"value_type": "SPS30_P2", "value": "9.5"},
                    {"value_type": "SPS30_P4", "value": "10.1"},
                ],
            }
        ),
        "air",
        [HardwareClaim(NOW, "AQ-Q1-003", BOARD), m("AQ-Q1-003", "pm25_ugm3", 9.5, time=NOW)],
    ),
    (
        "fiware-air-quality-ngsi-v2-normalized",
        "fiware/AirQualityObserved/AQ-Q3-001",
        js(AQO_V2_NORMALIZED),
        "air",
        AQO_RECORDS,
    ),
    (
        "fiware-air-quality-keyvalues",
        "fiware/AirQualityObserved/AQ-Q3-001",
        js(
            {
                "id": "urn:ngsi-ld:AirQualityObserved:AQ-Q3-001",
                "type": "AirQualityObserved",
                "dateObserved": "2026-11-21T07:00:00Z",
                "pm25": 38.5,
                "pm10": 61,
                "no2": 42.3,
                "o3": 55,
                "co": 900,
                "so2": 8.4,
                "temperature": 31.5,
                "relativeHumidity": 0.72,
                "airQualityIndex": 87,
            }
        ),
        "air",
        AQO_RECORDS,
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
    (
        "legacy-flood",
        "legacy/flood/FL-Q7-003",
        b"FL-Q7-003,1795244400,125,2.5,3.71\r\nFL-Q7-003, 1795244460 , -20 ,0,4.5\r\n\r\n",
        "flood",
        [
            m("FL-Q7-003", "water_level_cm", 12.5),
            m("FL-Q7-003", "rainfall_mm_h", 30.0),
            m("FL-Q7-003", "battery_pct", (3.71 - 3.3) / 0.9 * 100),
            m("FL-Q7-003", "water_level_cm", -2.0, time=T0 + timedelta(minutes=1)),
            m("FL-Q7-003", "rainfall_mm_h", 0.0, time=T0 + timedelta(minutes=1)),
            m("FL-Q7-003", "battery_pct", 100.0, time=T0 + timedelta(minutes=1)),
        ],
    ),
    (
        "trafficx",
        "vendor/trafficx/TR-Q1-001",
        js(TRAFFICX),
        "traffic",
        [
            m("TR-Q1-001", "vehicle_count", 60.0, time=T5),
            m("TR-Q1-001", "interval_s", 60.0, time=T5),
            m("TR-Q1-001", "avg_speed_kmh", 25.75, time=T5),
            m("TR-Q1-001", "occupancy_pct", 43.0 / 3, time=T5),
            m("TR-Q1-001", "vehicle_count", 42.0, time=T5, part="lane:1"),
            m("TR-Q1-001", "avg_speed_kmh", 23.5, time=T5, part="lane:1"),
            m("TR-Q1-001", "occupancy_pct", 31.0, time=T5, part="lane:1"),
            m("TR-Q1-001", "vehicle_count", 18.0, time=T5, part="lane:2"),
            m("TR-Q1-001", "avg_speed_kmh", 31.0, time=T5, part="lane:2"),
            m("TR-Q1-001", "occupancy_pct", 12.0, time=T5, part="lane:2"),
            m("TR-Q1-001", "vehicle_count", 0.0, time=T5, part="lane:3"),
            m("TR-Q1-001", "occupancy_pct", 0.0, time=T5, part="lane:3"),
        ],
    ),
    (
        "trafficx-no-vehicles",
        "vendor/trafficx/TR-Q1-001",
        b'{"ctrl": "TR-Q1-001", "time": "2026-11-21T07:05:00Z", "period": 30,'
        b' "lanes": [{"lane": 1, "count": 0, "speed": null, "occ": 0}]}',
        "traffic",
        [
            m("TR-Q1-001", "vehicle_count", 0.0, time=T5),
            m("TR-Q1-001", "interval_s", 30.0, time=T5),
            m("TR-Q1-001", "occupancy_pct", 0.0, time=T5),
            m("TR-Q1-001", "vehicle_count", 0.0, time=T5, part="lane:1"),
            m("TR-Q1-001", "occupancy_pct", 0.0, time=T5, part="lane:1"),
        ],
    ),
    (
        "camx",
        "vendor/camx/CAM-Q1-001/event",
        b'{"Source": "CAM-Q1-001", "UtcTime": "2026-11-21T07:05:00Z", "Rule": "Accident",'
        b' "Confidence": 87, "Count": 3}',
        "camera",
        [Event(T5, "CAM-Q1-001", "traffic.accident", "high", 0.87, {"rule": "Accident", "count": 3})],
    ),
    (
        "camx-without-count",
        "vendor/camx/CAM-Q1-001/event",
        b'{"Source": "CAM-Q1-001", "UtcTime": "2026-11-21T07:05:00Z", "Rule": "Flooding", "Confidence": 100}',
        "camera",
        [Event(T5, "CAM-Q1-001", "flood.observed", "high", 1.0, {"rule": "Flooding"})],
    ),
    (
        "fiware-tfo-keyvalues",
        "fiware/TrafficFlowObserved/TR-Q3-002",
        js(TFO_KEYVALUES),
        "traffic",
        TFO_RECORDS,
    ),
    (
        "fiware-tfo-normalized",
        "fiware/TrafficFlowObserved/TR-Q3-002",
        js(TFO_NORMALIZED),
        "traffic",
        TFO_RECORDS,
    ),
    (
        "fiware-tfo-lane-and-interval",
        "fiware/TrafficFlowObserved/TR-Q3-002",
        js(
            {
                "id": "urn:ngsi-ld:TrafficFlowObserved:TR-Q3-002",
                "type": "TrafficFlowObserved",
                "dateObserved": "2026-11-21T07:00:00Z/2026-11-21T07:05:00Z",
                "laneId": 2,
                "intensity": 9,
                "averageVehicleSpeed": {"type": "Property", "value": 5, "unitCode": "MTS"},
            }
        ),
        "traffic",
        [
            m("TR-Q3-002", "vehicle_count", 9.0, time=T5, part="lane:2"),
            m("TR-Q3-002", "avg_speed_kmh", 18.0, time=T5, part="lane:2"),
            m("TR-Q3-002", "interval_s", 300.0, time=T5, part="lane:2"),
        ],
    ),
    (
        "fiware-flood-monitoring-normalized",
        "fiware/FloodMonitoring/FL-Q7-003",
        js(
            {
                "id": "urn:ngsi-ld:FloodMonitoring:FL-Q7-003",
                "type": "FloodMonitoring",
                "currentLevel": {"type": "Property", "value": 0.42, "unitCode": "MTR"},
                "observationDateTime": {"type": "Property", "value": "2026-11-21T14:00:00+07:00"},
            }
        ),
        "flood",
        [m("FL-Q7-003", "water_level_cm", 42.0)],
    ),
    (
        "fiware-flood-monitoring-keyvalues-dateobserved",
        "fiware/FloodMonitoring/FL-Q7-003",
        b'{"id": "urn:ngsi-ld:FloodMonitoring:FL-Q7-003", "type": "FloodMonitoring",'
        b' "currentLevel": 0.5, "dateObserved": "2026-11-21T07:00:00Z"}',
        "flood",
        [m("FL-Q7-003", "water_level_cm", 50.0)],
    ),
    (
        "fiware-water-observed-keyvalues",
        "fiware/WaterObserved/FL-BT-001",
        b'{"id": "urn:ngsi-ld:WaterObserved:FL-BT-001", "type": "WaterObserved",'
        b' "waterLevel": 1.25, "dateObserved": "2026-11-21T07:00:00Z",'
        b' "location": {"type": "Point", "coordinates": [106.7, 10.77]}}',
        "flood",
        [m("FL-BT-001", "water_level_cm", 125.0)],
    ),
    (
        "fiware-water-observed-normalized-cm",
        "fiware/WaterObserved/FL-BT-001",
        b'{"id": "urn:ngsi-ld:WaterObserved:FL-BT-001", "type": "WaterObserved",'
        b' "waterLevel": {"type": "Property", "value": 30, "unitCode": "CMT"},'
        b' "dateObserved": {"type": "Property", "value": "2026-11-21T07:00:00Z"}}',
        "flood",
        [m("FL-BT-001", "water_level_cm", 30.0)],
    ),
    (
        "fiware-crowd-flow-normalized",
        "fiware/CrowdFlowObserved/CAM-Q1-001",
        b'{"id": "urn:ngsi-ld:CrowdFlowObserved:CAM-Q1-001", "type": "CrowdFlowObserved",'
        b' "peopleCount": {"type": "Property", "value": 310},'
        b' "dateObserved": {"type": "Property",'
        b' "value": {"@type": "DateTime", "@value": "2026-11-21T07:05:00Z"}}}',
        "camera",
        [m("CAM-Q1-001", "people_count", 310.0, time=T5)],
    ),
    (
        "fiware-crowd-flow-keyvalues",
        "fiware/CrowdFlowObserved/CAM-Q1-001",
        b'{"id": "urn:ngsi-ld:CrowdFlowObserved:CAM-Q1-001", "type": "CrowdFlowObserved",'
        b' "peopleCount": 310, "dateObserved": "2026-11-21T07:05:00Z"}',
        "camera",
        [m("CAM-Q1-001", "people_count", 310.0, time=T5)],
    ),
]


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

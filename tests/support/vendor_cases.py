"""Decoder test cases of the vendor forms: legacy flood, TrafficX, CamX, FIWARE and Sensor.Community."""

from __future__ import annotations

from datetime import timedelta

from ioc.records import Event, HardwareClaim, Record
from tests.support.decoding import BOARD, NOW, T0, T5, js, m

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
VENDOR_CASES: list[tuple[str, str, bytes, str, list[Record]]] = [
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

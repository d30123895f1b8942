"""Every encoder produces exactly the docs/devices.md shape; the ingest's decoders read them all back."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from ingest.decoders import decode, route
from ioc.errors import PayloadError
from ioc.fleet import FORMATS, DeviceSpec, load_fleet
from ioc.records import Event, Measurement, Snapshot
from ioc.settings import REPO_ROOT
from simulators import faults, formats
from simulators.fiware import FIWARE_ATTRIBUTES
from simulators.formats import CameraEvent, Reading
from simulators.runner import Simulation

TS = datetime(2025, 11, 21, 7, 0, 0, 250000, tzinfo=UTC)
FLOOD = {"water_level_cm": 12.5, "rainfall_mm_h": 12.0, "battery_pct": 88.0}
TRAFFIC = {"vehicle_count": 70, "interval_s": 60, "avg_speed_kmh": 22.9, "occupancy_pct": 30.0}
LANES = {
    "lane:1": {"vehicle_count": 42, "avg_speed_kmh": 23.5, "occupancy_pct": 31.0},
    "lane:2": {"vehicle_count": 28, "avg_speed_kmh": 22.0, "occupancy_pct": 29.0},
}


def device(device_id: str, kind: str, fmt: str, **metadata: object) -> DeviceSpec:
    return DeviceSpec(
        device_id,
        kind,
        fmt,
        "Nguyễn Hữu Cảnh – điểm 2",
        "binhthanh",
        10.7905,
        106.719,
        60,
        "V",
        dict(metadata),
    )


def test_canonical_telemetry() -> None:
    topic, payload = formats.telemetry(device("FL-BT-001", "flood", "canonical"), Reading(TS, 17, FLOOD))
    assert topic == "ioc/v1/flood/FL-BT-001/telemetry"
    assert json.loads(payload) == {
        "ts": "2025-11-21T07:00:00.250Z",
        "seq": 17,
        "device_id": "FL-BT-001",
        "metrics": FLOOD,
    }


def test_senml_pack_uses_base_name_base_time_and_registered_units() -> None:
    topic, payload = formats.telemetry(device("FL-BT-001", "flood", "senml"), Reading(TS, 1, FLOOD))
    assert topic == "ioc/v1/flood/FL-BT-001/telemetry"
    assert json.loads(payload) == [
        {"bn": "urn:dev:ioc:FL-BT-001:", "bt": 1763708400.25, "n": "water_level", "u": "m", "v": 0.125},
        {"n": "rainfall", "u": "mm/h", "v": 12.0},
        {"n": "battery", "u": "%", "v": 88.0},
    ]
    _, traffic = formats.telemetry(device("TR-BT-001", "traffic", "senml"), Reading(TS, 1, TRAFFIC))
    assert [(r["n"], r["u"]) for r in json.loads(traffic)] == [
        ("vehicle_count", "count"),
        ("interval", "s"),
        ("avg_speed", "km/h"),
        ("occupancy", "%"),
    ]


def test_legacy_flood_csv_line() -> None:
    reading = Reading(TS, 1, {"water_level_cm": 12.5, "rainfall_mm_h": 30.0, "battery_pct": 45.6})
    topic, payload = formats.telemetry(device("FL-Q7-003", "flood", "legacy_flood"), reading)
    assert topic == "legacy/flood/FL-Q7-003"
    assert payload == b"FL-Q7-003,1763708400,125,2.5,3.71"


def test_trafficx_lanes_in_local_time() -> None:
    topic, payload = formats.telemetry(device("TR-Q1-001", "traffic", "trafficx"), Reading(TS, 1, TRAFFIC, LANES))
    assert topic == "vendor/trafficx/TR-Q1-001"
    assert json.loads(payload) == {
        "ctrl": "TR-Q1-001",
        "time": "2025-11-21T14:00:00+07:00",
        "period": 60,
        "lanes": [
            {"lane": 1, "count": 42, "speed": 23.5, "occ": 0.31},
            {"lane": 2, "count": 28, "speed": 22.0, "occ": 0.29},
        ],
    }


def test_camx_event_and_canonical_event() -> None:
    ev = CameraEvent(TS, "traffic.accident", 0.87, 3)
    topic, payload = formats.event(device("CAM-Q1-001", "camera", "camx"), ev)
    assert topic == "vendor/camx/CAM-Q1-001/event"
    assert json.loads(payload) == {
        "Source": "CAM-Q1-001",
        "UtcTime": "2025-11-21T07:00:00Z",
        "Rule": "Accident",
        "Confidence": 87,
        "Count": 3,
    }
    topic, payload = formats.event(
        device("CAM-Q1-002", "camera", "canonical"),
        CameraEvent(TS, "flood.observed", 0.9, 0, {"depth_cm": 34}),
    )
    assert topic == "ioc/v1/camera/CAM-Q1-002/event"
    assert json.loads(payload) == {
        "ts": "2025-11-21T07:00:00.250Z",
        "type": "flood.observed",
        "severity": "high",
        "confidence": 0.9,
        "attrs": {"count": 0, "depth_cm": 34},
    }


def test_status_and_snapshot_topics() -> None:
    spec = device("CAM-Q1-001", "camera", "camx")
    assert formats.status(spec, True) == ("ioc/v1/camera/CAM-Q1-001/status", b"online")
    assert formats.status(spec, False) == ("ioc/v1/camera/CAM-Q1-001/status", b"offline")
    assert formats.snapshot_topic(spec) == "ioc/v1/camera/CAM-Q1-001/snapshot"


@pytest.mark.parametrize("form", ["normalized", "keyValues"])
def test_fiware_entities(form: str) -> None:
    def entity(spec: DeviceSpec, reading: Reading) -> dict[str, object]:
        topic, payload = formats.telemetry(spec, reading)
        doc = json.loads(payload)
        assert topic == f"fiware/{doc['type']}/{spec.device_id}"
        assert doc["id"] == f"urn:ngsi-ld:{doc['type']}:{spec.device_id}"
        if form == "normalized":
            assert doc["location"] == {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [106.719, 10.7905]},
            }
            return {k: v["value"] if isinstance(v, dict) and v.get("type") == "Property" else v for k, v in doc.items()}
        assert doc["location"] == {"type": "Point", "coordinates": [106.719, 10.7905]}
        return doc

    flood = entity(
        device(
            "FL-BT-002",
            "flood",
            "fiware",
            fiware_type="FloodMonitoring",
            fiware_form=form,
            warning_cm=20,
            danger_cm=30,
        ),
        Reading(TS, 1, {**FLOOD, "water_level_cm": 31.0}),
    )
    assert (flood["currentLevel"], flood["alertLevel"], flood["dangerLevel"]) == (0.31, 0.2, 0.3)
    assert flood["floodLevelStatus"] == "flood"
    assert flood["observationDateTime"] == "2025-11-21T07:00:00.250Z"
    water = entity(
        device("FL-BT-003", "flood", "fiware", fiware_type="WaterObserved", fiware_form=form),
        Reading(TS, 1, FLOOD),
    )
    assert (water["waterLevel"], water["dateObserved"]) == (0.125, "2025-11-21T07:00:00.250Z")
    traffic = entity(
        device(
            "TR-BT-002",
            "traffic",
            "fiware",
            fiware_type="TrafficFlowObserved",
            fiware_form=form,
            free_flow_kmh=40,
        ),
        Reading(TS, 1, TRAFFIC),
    )
    assert (traffic["intensity"], traffic["averageVehicleSpeed"], traffic["occupancy"]) == (70, 22.9, 0.3)
    assert (traffic["dateObservedFrom"], traffic["dateObservedTo"]) == (
        "2025-11-21T06:59:00.250Z",
        "2025-11-21T07:00:00.250Z",
    )
    crowd = entity(
        device("CAM-BT-009", "camera", "fiware", fiware_type="CrowdFlowObserved", fiware_form=form),
        Reading(TS, 1, {"people_count": 120, "vehicle_count": 40}),
    )
    assert (crowd["peopleCount"], crowd["dateObserved"]) == (120, "2025-11-21T07:00:00.250Z")


def test_every_format_and_fiware_type_is_used_by_several_demo_devices() -> None:
    fleet = load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")
    uses = Counter(d.format for d in fleet.devices)
    assert set(uses) == set(FORMATS) and min(uses.values()) >= 3
    types = Counter(str(d.metadata["fiware_type"]) for d in fleet.devices if d.format == "fiware")
    assert set(types) == set(FIWARE_ATTRIBUTES)
    kinds_formats = {(d.kind, d.format) for d in fleet.devices}
    assert {("flood", f) for f in ("canonical", "senml", "legacy_flood", "fiware")} <= kinds_formats
    assert {("traffic", f) for f in ("canonical", "trafficx", "fiware", "senml")} <= kinds_formats
    assert {("camera", f) for f in ("canonical", "camx", "fiware")} <= kinds_formats
    assert {("air", f) for f in ("canonical", "senml", "sensorcommunity", "fiware")} <= kinds_formats


def test_the_ingest_decodes_every_simulated_message_to_the_values_sent() -> None:
    fleet = load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")
    sim = Simulation(fleet, seed=11, speed=60, start=datetime(2025, 10, 14, 8, tzinfo=UTC), scenario="storm")
    seen: Counter[str] = Counter()
    for message in sim.messages(3600):
        r = route(message.topic)
        received = message.wall_time + timedelta(seconds=1)
        records = decode(r, message.payload, received)
        assert records
        assert {r.device_id for r in records} == {message.device_id}
        # Sensor.Community sends no time: its readings are stamped on receipt.
        sent = received if r.format == "sensorcommunity" else message.wall_time
        for record in records:
            seen[type(record).__name__] += 1
            if isinstance(record, Measurement | Event):
                assert abs(record.time - sent) < timedelta(seconds=1)
            if isinstance(record, Snapshot):
                assert record.data.startswith(b"\xff\xd8\xff") and len(record.data) < 64 * 1024
    assert seen["Measurement"] > 10000 and seen["StatusChange"] == len(fleet.devices)
    assert seen["Event"] >= 10 and seen["Snapshot"] == seen["Event"]


@pytest.mark.parametrize(
    ("kind", "reason"), [("malformed", "bad_encoding"), ("nan", "non_finite"), ("oversized", "oversized")]
)
def test_broken_payload_faults_are_refused_by_the_ingest(kind: str, reason: str) -> None:
    fleet = load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")
    sim = Simulation(fleet, seed=3, start=datetime(2025, 10, 14, 8, tzinfo=UTC), faults=f"{kind}=0.5")
    broken = [
        m for m in sim.messages(600) if m.channel == "telemetry" and m.device_id in {f["device"] for f in sim.fault_log}
    ]
    assert len(sim.fault_log) > 50
    refused = 0
    for message in broken:
        try:
            decode(route(message.topic), message.payload, message.wall_time + timedelta(seconds=1))
        except PayloadError as exc:
            refused += 1
            assert exc.reason in {reason, "bad_schema", "bad_encoding", "bad_json"}
    assert refused >= len(sim.fault_log)


def test_fault_helpers_keep_or_break_syntax_as_intended() -> None:
    payload = b'{"ts":"2025-11-21T07:00:00Z","seq":1,"metrics":{"water_level_cm":12.5}}'
    assert b"NaN" in faults.with_nan(payload) and b'"seq":1' in faults.with_nan(payload)
    big = faults.oversized(payload)
    assert len(big) > 64 * 1024 and json.loads(big)["metrics"] == {"water_level_cm": 12.5}
    assert len(faults.oversized(b"FL-Q7-003,1763708400,125,2.5,3.71")) > 64 * 1024
    assert faults.with_nan(b"FL-Q7-003,1763708400,125,2.5,3.71") == b"FL-Q7-003,1763708400,NaN,2.5,3.71"
    assert faults.FaultSpec.parse("0.09").rates == tuple((k, 0.01) for k in faults.FAULT_KINDS)
    assert faults.FaultSpec.parse("drop=0.01,malformed=0.02").rates == (("drop", 0.01), ("malformed", 0.02))
    for bad in ("drop=2", "teleport=0.1", "drop", "1.5", "drop=0.6,nan=0.6"):
        with pytest.raises(ValueError):
            faults.FaultSpec.parse(bad)

"""Fuzz every decoder: route + decode + validate gives sound records or PayloadError, nothing else."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decoders import decode, route
from ingest.validation import DeviceInfo, validate
from ioc.errors import PayloadError
from ioc.kinds import load_kinds
from ioc.records import SEVERITIES, Event, Measurement, Record, Snapshot, StatusChange
from ioc.settings import Settings

NOW = datetime(2026, 11, 21, 7, 10, tzinfo=UTC)
KINDS = load_kinds()
SETTINGS = Settings()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# topic -> registry kind of the device the topic names
TOPICS: dict[str, str] = {
    "ioc/v1/flood/FL-1/telemetry": "flood",
    "ioc/v1/traffic/TR-1/telemetry": "traffic",
    "ioc/v1/camera/CAM-1/event": "camera",
    "ioc/v1/flood/FL-1/status": "flood",
    "ioc/v1/camera/CAM-1/snapshot": "camera",
    "legacy/flood/FL-1": "flood",
    "vendor/trafficx/TR-1": "traffic",
    "vendor/camx/CAM-1/event": "camera",
    "fiware/TrafficFlowObserved/TR-1": "traffic",
    "fiware/FloodMonitoring/FL-1": "flood",
    "fiware/WaterObserved/FL-1": "flood",
    "fiware/CrowdFlowObserved/CAM-1": "camera",
}
topics = st.sampled_from(sorted(TOPICS))

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["2026-11-21T07:05:00Z", "2026-11-21T07:05:00", "online", "m", "urn:dev:ioc:FL-1:"])
    | st.just(1795244700)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
valid_times = st.sampled_from(
    ["2026-11-21T07:05:00Z", "2026-11-21T14:05:00.5+07:00", 1795244700, 1795244700.5]
)
small = st.integers(0, 100) | st.floats(0, 100)
ratio = st.floats(0, 1)
DELETE = object()


def mutated(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly-valid documents with up to two fields replaced by arbitrary JSON or removed."""

    def apply(case: tuple[dict[str, Any], list[tuple[int, Any]]]) -> dict[str, Any]:
        doc, edits = case
        keys = [*sorted(doc), "stray"]
        for index, value in edits:
            key = keys[index % len(keys)]
            if value is DELETE:
                doc.pop(key, None)
            else:
                doc[key] = value
        return doc

    edit = st.tuples(st.integers(0, 30), json_values | st.just(DELETE))
    return st.tuples(valid, st.just([]) | st.lists(edit, max_size=2)).map(apply)


def encoded(docs: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return docs.map(lambda doc: json.dumps(doc).encode())


def prop(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An NGSI-LD attribute in keyValues or normalized form."""
    return values | values.map(lambda v: {"type": "Property", "value": v})


metric = st.sampled_from(["water_level_cm", "rainfall_mm_h", "battery_pct", "vehicle_count", "people_count"])
senml_record = mutated(
    st.fixed_dictionaries(
        {
            "n": st.sampled_from(
                ["water_level", "rainfall", "battery", "vehicle_count", "avg_speed", "people_count"]
            ),
            "u": st.sampled_from(["m", "cm", "mm", "mm/h", "m/s", "%", "/", "count", "km/h", "furlong"]),
            "v": small,
        },
        optional={
            "bn": st.sampled_from(
                ["urn:dev:ioc:FL-1:", "urn:dev:ioc:TR-1:", "urn:dev:ioc:CAM-1:", "urn:dev:ioc:"]
            ),
            "bt": valid_times,
            "bv": small,
            "t": st.integers(-600, 600),
        },
    )
)
lane = mutated(
    st.fixed_dictionaries(
        {"lane": st.integers(0, 4), "count": st.integers(0, 50), "speed": small, "occ": ratio}
    )
)
telemetry = mutated(
    st.fixed_dictionaries(
        {"ts": valid_times, "metrics": st.dictionaries(metric, small, max_size=3)},
        optional={"seq": st.integers(0, 100), "device_id": st.sampled_from(["FL-1", "TR-1"])},
    )
)
event = mutated(
    st.fixed_dictionaries(
        {
            "ts": valid_times,
            "type": st.sampled_from(["traffic.accident", "flood.observed", "Accident"]),
            "severity": st.sampled_from([*SEVERITIES, "urgent"]),
        },
        optional={
            "confidence": ratio,
            "attrs": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        },
    )
)
csv_row = st.tuples(
    st.sampled_from(["FL-1", "FL-2", ""]),
    st.sampled_from(["1795244700", "1795244700.5", "1795244700000", "x"]),
    st.sampled_from(["125", "-20", "1e999", "nan", "9000", "1_0"]),
    st.sampled_from(["2.5", "0", "-1"]),
    st.sampled_from(["3.71", "4.3", "0"]),
).map(",".join)
trafficx_report = mutated(
    st.fixed_dictionaries(
        {
            "ctrl": st.just("TR-1"),
            "time": valid_times,
            "period": st.integers(1, 300),
            "lanes": st.lists(lane, max_size=4),
        }
    )
)
camx_event = mutated(
    st.fixed_dictionaries(
        {
            "Source": st.just("CAM-1"),
            "UtcTime": valid_times,
            "Rule": st.sampled_from(["Accident", "WrongWay", "Crowd", "Congestion", "Flooding", "Fire"]),
            "Confidence": st.integers(0, 110) | st.floats(0, 100),
        },
        optional={"Count": st.integers(-1, 100)},
    )
)


def fiware_entity(entity_type: str, device: str) -> st.SearchStrategy[tuple[str, bytes]]:
    entity = mutated(
        st.fixed_dictionaries(
            {"id": st.just(f"urn:ngsi-ld:{entity_type}:{device}"), "type": st.just(entity_type)},
            optional={
                "dateObserved": prop(valid_times | st.just("2026-11-21T07:04:00Z/2026-11-21T07:05:00Z")),
                "dateObservedFrom": prop(valid_times),
                "dateObservedTo": prop(valid_times),
                "observationDateTime": prop(valid_times),
                "intensity": prop(st.integers(0, 100)),
                "averageVehicleSpeed": prop(small),
                "occupancy": prop(ratio),
                "laneId": prop(st.integers(0, 4)),
                "currentLevel": prop(st.floats(-0.5, 5)),
                "waterLevel": prop(st.floats(-0.5, 5)),
                "peopleCount": prop(st.integers(0, 1000)),
            },
        )
    )
    return st.tuples(st.just(f"fiware/{entity_type}/{device}"), encoded(entity))


# format -> (topic, payload) pairs that are mostly valid, with a few fields broken.
STRUCTURED: dict[str, st.SearchStrategy[tuple[str, bytes]]] = {
    "canonical": st.one_of(
        st.tuples(
            st.sampled_from(["ioc/v1/flood/FL-1/telemetry", "ioc/v1/traffic/TR-1/telemetry"]),
            encoded(telemetry),
        ),
        st.tuples(st.just("ioc/v1/flood/FL-1/telemetry"), encoded(st.lists(senml_record, max_size=4))),
        st.tuples(st.just("ioc/v1/camera/CAM-1/event"), encoded(event)),
    ),
    "legacy_flood": st.tuples(
        st.just("legacy/flood/FL-1"),
        st.lists(csv_row, min_size=1, max_size=3).map(lambda r: "\n".join(r).encode()),
    ),
    "trafficx": st.tuples(st.just("vendor/trafficx/TR-1"), encoded(trafficx_report)),
    "camx": st.tuples(st.just("vendor/camx/CAM-1/event"), encoded(camx_event)),
    "fiware": st.one_of(
        fiware_entity("TrafficFlowObserved", "TR-1"),
        fiware_entity("FloodMonitoring", "FL-1"),
        fiware_entity("WaterObserved", "FL-1"),
        fiware_entity("CrowdFlowObserved", "CAM-1"),
    ),
}


def check(topic: str, payload: bytes) -> list[Record]:
    """Run the pipeline; on success assert the record invariants."""
    r = route(topic)
    device = DeviceInfo(r.device_id, TOPICS[topic], r.format)
    try:
        records = validate(r, decode(r, payload, NOW), device, KINDS, SETTINGS, NOW)
    except PayloadError as exc:
        assert exc.reason and len(exc.detail) <= 250
        return []
    assert records
    metrics = KINDS[device.kind].metrics
    for rec in records:
        assert rec.device_id == r.device_id
        assert rec.time.utcoffset() == timedelta(0)
        assert NOW - timedelta(days=8) < rec.time < NOW + timedelta(minutes=6)
        if isinstance(rec, Measurement):
            spec = metrics[rec.metric]
            assert type(rec.value) is float and math.isfinite(rec.value)
            assert spec.min <= rec.value <= spec.max
        elif isinstance(rec, Event):
            assert rec.severity in SEVERITIES and 0.0 <= rec.confidence <= 1.0
            json.dumps(rec.attrs, allow_nan=False).encode("utf-8")
        else:
            assert isinstance(rec, StatusChange | Snapshot)
    return records


@FUZZ
@given(topic=topics, payload=st.binary(max_size=512))
def test_arbitrary_bytes(topic: str, payload: bytes) -> None:
    check(topic, payload)


@FUZZ
@given(topic=topics, doc=json_values)
def test_arbitrary_json(topic: str, doc: Any) -> None:
    check(topic, json.dumps(doc).encode())


@FUZZ
@given(topic=topics, text=st.text(max_size=200))
def test_arbitrary_text(topic: str, text: str) -> None:
    check(topic, text.encode("utf-8", "surrogatepass"))


# The share of the structured cases (mostly valid, a few fields broken) each decoder must accept: about a third
# of the share measured over three runs of 300 cases (camx 0.55-0.64, canonical 0.16-0.21, fiware 0.18-0.25,
# legacy_flood 0.06-0.07, trafficx 0.32-0.35). A decoder that rejects everything fails here, not "no crash".
ACCEPTED_AT_LEAST = {"camx": 0.2, "canonical": 0.05, "fiware": 0.06, "legacy_flood": 0.02, "trafficx": 0.1}


@pytest.mark.parametrize("fmt", sorted(STRUCTURED))
def test_structured(fmt: str) -> None:
    """Sound records or a PayloadError for every case, and a fair share of the mostly valid cases accepted."""
    outcomes: list[bool] = []

    @FUZZ
    @given(case=STRUCTURED[fmt])
    def run(case: tuple[str, bytes]) -> None:
        outcomes.append(bool(check(*case)))

    run()
    share = sum(outcomes) / len(outcomes)
    assert share >= ACCEPTED_AT_LEAST[fmt], f"{fmt}: only {sum(outcomes)} of {len(outcomes)} cases accepted"


@FUZZ
@given(topic=st.text(max_size=80) | st.sampled_from(sorted(TOPICS)).map(lambda t: t + "x"))
def test_arbitrary_topics(topic: str) -> None:
    try:
        r = route(topic)
    except PayloadError as exc:
        assert exc.reason in {"unknown_topic", "bad_device_id"}
    else:
        assert r.channel in {"telemetry", "event", "status", "snapshot"}

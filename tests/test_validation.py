"""validate(): registry, kind, identity, clock and range checks on decoded records."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.decoders import Route, route
from ingest.validation import DeviceInfo, validate
from ioc.errors import PayloadError
from ioc.kinds import load_kinds
from ioc.reasons import Reason
from ioc.records import Event, Measurement, Record, Snapshot, StatusChange
from ioc.settings import Settings

NOW = datetime(2026, 11, 21, 7, 10, tzinfo=UTC)
KINDS = load_kinds()
SETTINGS = Settings()
FLOOD = DeviceInfo("FL-1", "flood", "canonical")
TEL = route("ioc/v1/flood/FL-1/telemetry")
LEGACY = route("legacy/flood/FL-1")


def level(value: float, time: datetime = NOW, device: str = "FL-1") -> Measurement:
    return Measurement(time, device, "water_level_cm", value)


def reason(
    records: list[Record], device: DeviceInfo | None = FLOOD, r: Route = TEL, settings: Settings = SETTINGS
) -> str:
    with pytest.raises(PayloadError) as exc:
        validate(r, records, device, KINDS, settings, NOW)
    assert exc.value.reason in set(Reason)
    return exc.value.reason


def test_accepts_and_returns_the_same_list() -> None:
    records: list[Record] = [
        level(-50),
        level(500),
        Measurement(NOW, "FL-1", "battery_pct", 0.0),
        StatusChange(NOW, "FL-1", True),
        Snapshot(NOW, "FL-1", b"\xff\xd8\xff\xd9"),
        Event(NOW, "FL-1", "flood.observed", "critical", 0.0, {}),
    ]
    assert validate(TEL, records, FLOOD, KINDS, SETTINGS, NOW) is records


def test_registry_checks_come_first() -> None:
    assert reason([level(1)], device=None) == "unknown_device"
    assert reason([level(1e9)], device=replace(FLOOD, enabled=False)) == "device_disabled"
    assert reason([level(1)], device=replace(FLOOD, kind="traffic")) == "kind_mismatch"
    assert reason([level(1)], device=replace(FLOOD, kind="sewer")) == "kind_mismatch"


def test_vendor_topics_take_the_kind_from_the_registry() -> None:
    traffic = DeviceInfo("FL-1", "traffic", "legacy_flood")
    assert reason([level(1)], device=traffic, r=LEGACY) == "unknown_metric"
    assert validate(LEGACY, [level(1)], replace(traffic, kind="flood"), KINDS, SETTINGS, NOW)


def test_identity_metric_and_value() -> None:
    assert reason([level(1), level(1, device="FL-2")]) == "device_mismatch"
    assert reason([Measurement(NOW, "FL-1", "vehicle_count", 1.0)]) == "unknown_metric"
    assert reason([level(math.nan)]) == "non_finite"
    assert reason([level(-math.inf)]) == "non_finite"
    assert reason([level(-50.001)]) == "out_of_range"
    assert reason([level(500.001)]) == "out_of_range"
    assert reason([]) == "empty"


def test_time_window_edges() -> None:
    past = timedelta(seconds=SETTINGS.ingest_past_window_s)
    future = timedelta(seconds=SETTINGS.ingest_future_skew_s)
    assert validate(TEL, [level(1, NOW - past), level(1, NOW + future)], FLOOD, KINDS, SETTINGS, NOW)
    assert reason([level(1, NOW - past - timedelta(microseconds=1))]) == "timestamp_out_of_window"
    assert reason([level(1, NOW + future + timedelta(microseconds=1))]) == "timestamp_out_of_window"
    assert reason([level(1, NOW.replace(tzinfo=None))]) == "bad_schema"
    strict = Settings(ingest_future_skew_s=0)
    assert reason([level(1, NOW + timedelta(seconds=1))], settings=strict) == "timestamp_out_of_window"


def test_event_invariants() -> None:
    assert reason([Event(NOW, "FL-1", "flood.observed", "urgent", 0.5, {})]) == "bad_event"
    assert reason([Event(NOW, "FL-1", "flood.observed", "high", 1.01, {})]) == "bad_event"
    assert reason([Event(NOW, "FL-1", "flood.observed", "high", math.nan, {})]) == "bad_event"


def test_custom_kind_from_kinds_file(tmp_path: Path) -> None:
    extra = tmp_path / "kinds.yaml"
    extra.write_text("kinds:\n  air:\n    metrics:\n      pm25_ugm3: {unit: ug/m3, min: 0, max: 1000}\n")
    kinds = load_kinds(extra)
    r = route("ioc/v1/air/AQ-1/telemetry")
    device = DeviceInfo("AQ-1", "air", "canonical")
    records: list[Record] = [Measurement(NOW, "AQ-1", "pm25_ugm3", 35.0)]
    assert validate(r, records, device, kinds, SETTINGS, NOW) is records

"""dashboards.air (pure): suspect sensors by a robust comparison with their neighbours, zone and city indices,
the hourly history; no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dashboards import air
from ioc import aqi


def sensor(device_id: str, lat: float, zone: str = "z1", status: str = "online") -> dict[str, Any]:
    """An air device as the live state holds it (only what dashboards.air reads)."""
    return {
        "device_id": device_id,
        "name": device_id,
        "kind": "air",
        "zone": zone,
        "lat": lat,
        "lon": 106.7,
        "status": status,
    }


def pm(value: float, n: int = 12) -> dict[str, list[float | None]]:
    """PM2.5 hourly means, all ``value``."""
    return {"pm25": [value] * n}


def test_a_sensor_far_from_its_neighbours_is_suspect_with_the_evidence() -> None:
    devices = [sensor(f"S{i}", 10.70 + 0.002 * i) for i in range(5)]
    hours = {"S0": pm(40), "S1": pm(45), "S2": pm(50), "S3": pm(55), "S4": pm(300)}
    assert air.suspects(devices, hours) == {
        "S4": {"pollutant": "pm25", "value": 300.0, "median": 47.5, "z": 21.3, "neighbours": 4}
    }


def test_a_burning_episode_moves_the_whole_neighbourhood_and_nobody_is_suspect() -> None:
    devices = [sensor(f"S{i}", 10.70 + 0.002 * i) for i in range(5)]
    hours = {"S0": pm(240), "S1": pm(260), "S2": pm(300), "S3": pm(280), "S4": pm(350)}
    assert air.suspects(devices, hours) == {}


def test_no_verdict_without_enough_neighbours_within_the_radius() -> None:
    near = [sensor("S0", 10.70), sensor("S1", 10.702), sensor("S2", 10.704)]
    far = [sensor("S3", 10.80)]  # 11 km north: not a neighbour
    hours = {"S0": pm(40), "S1": pm(45), "S2": pm(500), "S3": pm(42)}
    assert air.suspects(near + far, hours) == {}


def test_a_drift_needs_most_of_the_window() -> None:
    """The comparison uses the mean of the last 3 hours, and only with at least 2 of them."""
    devices = [sensor(f"S{i}", 10.70 + 0.002 * i) for i in range(4)]
    hours = {"S0": pm(40), "S1": pm(45), "S2": pm(50), "S3": {"pm25": [400.0, None, None, 40.0]}}
    assert air.suspects(devices, hours) == {}
    hours["S3"] = {"pm25": [400.0, 380.0, None]}
    assert set(air.suspects(devices, hours)) == {"S3"}


def test_zone_and_city_are_their_worst_counted_sensor() -> None:
    devices = [
        sensor("A1", 10.70, "z1"),
        sensor("A2", 10.80, "z1", status="offline"),  # old news: not counted
        sensor("B1", 10.90, "z2"),
        sensor("B2", 10.95, "z2"),
    ]
    hours = {"A1": pm(60), "A2": pm(400), "B1": pm(20), "B2": {"pm25": [20.0] * 12, "no2": [250.0]}}
    figures = {d: air.sensor(h) for d, h in hours.items()}
    zones = [{"zone_id": "z1", "name": "One"}, {"zone_id": "z2", "name": "Two"}, {"zone_id": "z3", "name": "None"}]
    view = air.view(zones, devices, figures, {"B1": {"pollutant": "pm25"}})
    by_zone = {z["zone_id"]: z for z in view["zones"]}
    assert set(by_zone) == {"z1", "z2"}  # a zone without air sensors has no line
    assert (by_zone["z1"]["aqi"], by_zone["z1"]["device_id"], by_zone["z1"]["sensors"]) == (117, "A1", 1)
    assert (by_zone["z2"]["aqi"], by_zone["z2"]["dominant"], by_zone["z2"]["sensors"]) == (105, "no2", 1)
    assert view["city"] == {
        "aqi": 117,
        "band": "poor",
        "dominant": "pm25",
        "device_id": "A1",
        "sensors": 2,
        "zone": "z1",
    }
    assert [w["device_id"] for w in view["worst"]] == ["A1", "B2"]
    assert view["dominant"] == [{"pollutant": "no2", "sensors": 1}, {"pollutant": "pm25", "sensors": 1}]
    assert [p["device_id"] for p in view["points"]] == ["A1", "A2", "B1", "B2"] and view["suspects"] == 1
    assert air.summary(view)["zones"] == [
        {"zone_id": "z1", "aqi": 117, "band": "poor", "dominant": "pm25"},
        {"zone_id": "z2", "aqi": 105, "band": "poor", "dominant": "no2"},
    ]


def test_without_air_sensors_the_city_has_no_index() -> None:
    view = air.view([{"zone_id": "z1", "name": "One"}], [], {}, {})
    assert view["city"] == {"aqi": None, "band": None, "dominant": None, "device_id": None, "sensors": 0}
    assert view["zones"] == [] and view["points"] == []


def test_history_is_the_index_as_it_stood_each_hour() -> None:
    """Hour k's index uses the hourly means from k hours back: a fresh spike shows in the last hour only."""
    hours = {"pm25": [200.0] + [20.0] * 13}
    at = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    history = air.history(hours, at, 3)
    assert [h["time"] for h in history] == ["2026-11-21T06:00:00Z", "2026-11-21T07:00:00Z", "2026-11-21T08:00:00Z"]
    assert [h["aqi"] for h in history] == [40, 40, aqi.hourly_index(hours).aqi]
    assert air.history({}, at, 2) == [
        {"time": "2026-11-21T07:00:00Z", "aqi": None, "dominant": None},
        {"time": "2026-11-21T08:00:00Z", "aqi": None, "dominant": None},
    ]


def test_meta_carries_both_scales_labelled() -> None:
    meta = air.meta()
    assert meta["index"] == "VN_AQI" and meta["us_epa"]["index"].startswith("US EPA")
    assert [b["key"] for b in meta["bands"]] == list(aqi.BAND_KEYS)
    assert {p["key"]: p["metric"] for p in meta["pollutants"]}["pm25"] == "pm25_ugm3"

"""Fleet files: the demo fleet, the three file formats and every validation error naming its problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ioc.errors import ConfigError
from ioc.fleet import FORMATS, DeviceSpec, Fleet, ZoneSpec, load_fleet
from ioc.settings import REPO_ROOT

DEMO = REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml"
HEADER = "device_id,kind,format,name,zone,lat,lon,interval_s,vendor"


def test_demo_fleet_has_every_zone_and_the_promised_devices() -> None:
    fleet = load_fleet(DEMO)
    assert isinstance(fleet, Fleet)
    zones = {z.zone_id: z for z in fleet.zones}
    assert len(zones) == 14
    assert {z for z, spec in zones.items() if spec.priority} == {"q1", "q12", "thuthiem"}
    assert zones["binhthanh"].name == "Bình Thạnh"
    by_kind: dict[str, list[DeviceSpec]] = {}
    for device in fleet.devices:
        by_kind.setdefault(device.kind, []).append(device)
    assert len(by_kind["flood"]) >= 30
    assert len(by_kind["traffic"]) >= 40
    assert len(by_kind["camera"]) >= 30
    assert {d.zone for d in fleet.devices} == set(zones)
    assert {d.format for d in fleet.devices} == set(FORMATS)
    flood = fleet.device("FL-BT-001")
    assert flood.name == "Nguyễn Hữu Cảnh – điểm 1"
    assert flood.metadata["warning_cm"] == 20 and 30 <= flood.metadata["danger_cm"] <= 40
    assert {"street", "ground_m"} <= set(flood.metadata)
    assert all({"corridor", "free_flow_kmh", "lanes"} <= set(d.metadata) for d in by_kind["traffic"])
    assert all("fiware_type" in d.metadata for d in fleet.devices if d.format == "fiware")
    # Jittered around the city, not piled on one point.
    assert len({(d.lat, d.lon) for d in fleet.devices}) == len(fleet.devices)
    assert all(10.6 < d.lat < 10.95 and 106.55 < d.lon < 106.85 for d in fleet.devices)


def test_csv_rows_become_devices_with_extra_columns_as_metadata(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(
        f"{HEADER},street,danger_cm\n"
        "FL-Q7-900,flood,legacy_flood,Huỳnh Tấn Phát – điểm 9,q7,10.73,106.729,60,LegacyGauge,"
        "Huỳnh Tấn Phát,35\n"
        "TR-Q1-900,traffic,trafficx,Võ Văn Kiệt,q1,10.764,106.696,,TrafficX,,\n",
        encoding="utf-8",
    )
    fleet = load_fleet(path)
    assert fleet.zones == ()
    flood, traffic = fleet.devices
    assert flood == DeviceSpec(
        "FL-Q7-900",
        "flood",
        "legacy_flood",
        "Huỳnh Tấn Phát – điểm 9",
        "q7",
        10.73,
        106.729,
        60,
        "LegacyGauge",
        {"street": "Huỳnh Tấn Phát", "danger_cm": 35},
    )
    assert traffic.interval_s == 60  # the kind's default when the cell is empty
    assert traffic.metadata == {}


def test_geojson_points_take_coordinates_from_the_geometry(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [106.7009, 10.7769]},
                "properties": {
                    "device_id": "CAM-Q1-900",
                    "kind": "camera",
                    "format": "camx",
                    "name": "Nguyễn Huệ",
                    "zone": "q1",
                    "interval_s": 30,
                    "vendor": "CamX",
                    "usage": "SURVEILLANCE",
                },
            }
        ],
    }
    path = tmp_path / "fleet.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    (camera,) = load_fleet(path).devices
    assert (camera.lat, camera.lon, camera.interval_s) == (10.7769, 106.7009, 30)
    assert camera.metadata == {"usage": "SURVEILLANCE"}


def test_yaml_zones_are_parsed_with_metadata(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "zones:\n  - {zone_id: q1, name: Quận 1, lat: 10.77, lon: 106.70, priority: true,"
        " metadata: {pilot: true}}\n"
        "devices:\n  - {device_id: FL-Q1-001, kind: flood, format: senml, name: A, zone: q1,"
        " lat: 10.77, lon: 106.7,"
        " metadata: {danger_cm: 30}, street: B}\n",
        encoding="utf-8",
    )
    fleet = load_fleet(path)
    assert fleet.zones == (ZoneSpec("q1", "Quận 1", 10.77, 106.70, True, {"pilot": True}),)
    assert fleet.devices[0].metadata == {"danger_cm": 30, "street": "B"}


GOOD = "FL-Q7-001,flood,canonical,Điểm,q7,10.73,106.72,60,V"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("FL Q7 001,flood,canonical,Điểm,q7,10.73,106.72,60,V", ["row 2", "device_id", "FL Q7 001"]),
        (
            "FL-Q7-001,airquality,canonical,Điểm,q7,10.73,106.72,60,V",
            ["row 2", "FL-Q7-001", "kind", "airquality"],
        ),
        ("FL-Q7-001,flood,xml,Điểm,q7,10.73,106.72,60,V", ["row 2", "FL-Q7-001", "format", "xml"]),
        ("FL-Q7-001,flood,canonical,Điểm,q7,97.5,106.72,60,V", ["row 2", "FL-Q7-001", "lat", "97.5"]),
        ("FL-Q7-001,flood,canonical,Điểm,q7,10.73,east,60,V", ["row 2", "FL-Q7-001", "lon", "east"]),
        ("FL-Q7-001,flood,canonical,,q7,10.73,106.72,60,V", ["row 2", "FL-Q7-001", "name"]),
        ("FL-Q7-001,flood,canonical,Điểm,,10.73,106.72,60,V", ["row 2", "FL-Q7-001", "zone"]),
        ("FL-Q7-001,flood,canonical,Điểm,q7,10.73,106.72,0.5,V", ["row 2", "FL-Q7-001", "interval_s"]),
        (f"{GOOD}\n{GOOD}", ["row 3", "FL-Q7-001", "duplicated"]),
    ],
)
def test_csv_errors_name_file_row_device_and_field(tmp_path: Path, row: str, expected: list[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n{row}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.yaml", "devices: {}\n", "'devices:' list"),
        (
            "a.yaml",
            "zones: [{zone_id: q1, name: Q1, lat: 10, lon: 106}]\ndevices:\n"
            "  - {device_id: X-1, kind: flood, format: senml, name: n, zone: q9, lat: 10, lon: 106}\n",
            "zone 'q9' is not one of the file's zones",
        ),
        (
            "a.yaml",
            "zones: [{zone_id: q1, name: Q1, lat: 10, lon: 106, priority: maybe}]\ndevices: []\n",
            "priority must be true or false",
        ),
        (
            "a.yaml",
            "zones: [{zone_id: q1, name: Q1, lat: 10, lon: 106}, {zone_id: q1, name: Q, lat: 1, lon: 1}]\n"
            "devices: []\n",
            "zone_id 'q1' is duplicated",
        ),
        ("a.yaml", "devices: [\n", "not valid YAML"),
        ("a.geojson", '{"type": "Feature"}', "FeatureCollection"),
        (
            "a.geojson",
            '{"type": "FeatureCollection", "features": [{"geometry": {"type": "LineString"}}]}',
            "feature #1: field geometry must be a GeoJSON Point",
        ),
        ("a.txt", "", "unknown extension"),
    ],
)
def test_structural_errors_say_what_is_wrong(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_fleet(tmp_path / "nope.yaml")

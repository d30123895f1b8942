"""Pure parts of incidents: the grouping choice, distances and directions, procedure files (table-driven)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dashboards.alerts.rules import parse as parse_rules
from incidents.geo import bearing_deg, bounding_box, compass, haversine_m
from incidents.grouping import Place, choose
from incidents.procedures import Catalogue, Grouping, applicable_steps, missing_required, parse
from ioc.settings import REPO_ROOT

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
M_LAT = 1 / 111_195.0
RULE = Grouping(rules=("r",), radius_m=500, window_min=30)


def at(north_m: float, minutes: float = 0.0, zone: str | None = "q1", located: bool = True) -> Place:
    """A place ``north_m`` metres north of (10.77, 106.70), ``minutes`` after T0."""
    lat, lon = (10.77 + north_m * M_LAT, 106.70) if located else (None, None)
    return Place(lat, lon, zone, T0 + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("alert", "incidents", "expected"),
    [
        (at(0), {}, None),
        (at(400), {1: at(0)}, 1),  # within 500 m
        (at(600), {1: at(0)}, None),  # beyond
        (at(100, minutes=31), {1: at(0)}, None),  # the incident's newest alert is older than 30 min
        (at(100, minutes=29), {1: at(0)}, 1),
        (at(300), {1: at(0), 2: at(250)}, 2),  # the nearest
        (at(100), {1: at(0), 2: at(200)}, 2),  # equally near: the newest
        (at(0, located=False), {1: at(5000)}, 1),  # no coordinates: same zone
        (at(0, located=False, zone="q3"), {1: at(0)}, None),  # no coordinates, another zone
        (at(0, located=False, zone=None), {1: at(0, zone=None)}, None),  # nothing to compare
    ],
)
def test_an_alert_joins_the_nearest_open_incident_in_range(
    alert: Place, incidents: dict[int, Place], expected: int | None
) -> None:
    assert choose(alert, incidents, RULE) == expected


def test_distance_and_direction() -> None:
    assert haversine_m(10.77, 106.70, 10.77, 106.70) == 0
    assert haversine_m(10.77, 106.70, 10.78, 106.70) == pytest.approx(1111.95, rel=1e-4)  # 0.01 degree of latitude
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * 6_371_008.8)
    for (lat, lon), expected, name in [
        ((10.78, 106.70), 0, "N"),
        ((10.77, 106.71), 90, "E"),
        ((10.76, 106.70), 180, "S"),
        ((10.77, 106.69), 270, "W"),
        ((10.78, 106.71), 44.5, "NE"),  # a degree of longitude is cos(10.77°) = 0.98 of one of latitude
    ]:
        assert bearing_deg(10.77, 106.70, lat, lon) == pytest.approx(expected, abs=0.2)
        assert compass(bearing_deg(10.77, 106.70, lat, lon)) == name
    assert compass(359) == "N" and compass(337.4) == "NW" and compass(22.6) == "NE"


@pytest.mark.parametrize("lat", [0.0, 10.77, 60.0, -45.0, 89.0])
def test_the_bounding_box_holds_every_point_of_the_circle(lat: float) -> None:
    box = bounding_box(lat, 106.7, 500)
    for degrees in range(0, 360, 5):  # points on the circle, found by walking along each bearing
        b = math.radians(degrees)
        d = 500 / 6_371_008.8
        p1 = math.radians(lat)
        p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
        l2 = math.radians(106.7) + math.atan2(
            math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
        )
        plat, plon = math.degrees(p2), math.degrees(l2)
        assert haversine_m(lat, 106.7, plat, plon) == pytest.approx(500, abs=0.01)
        assert box.lat_min <= plat <= box.lat_max and box.lon_min <= plon <= box.lon_max, degrees


STEPS = """
type: x
version: 2
name: {vi: X, en: X}
steps:
  - {id: a, text: {vi: A, en: A}}
  - {id: b, when: critical, text: {vi: B, en: B}}
  - {id: c, required: false, text: {vi: C, en: C}}
"""


def test_steps_apply_by_severity_and_required_ones_block() -> None:
    procedure = parse(STEPS).snapshot()
    assert [s["id"] for s in applicable_steps(procedure, "warning")] == ["a", "c"]
    assert [s["id"] for s in applicable_steps(procedure, "critical")] == ["a", "b", "c"]
    assert missing_required(procedure, "warning", set()) == ["a"]
    assert missing_required(procedure, "critical", {"a"}) == ["b"]
    assert missing_required(procedure, "critical", {"a", "b"}) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (STEPS.replace("{id: c,", "{id: a,"), "duplicate step ids: a"),
        (STEPS.replace("en: B}", "}"), "en"),  # both languages are required
        (STEPS.replace("version: 2", "version: 0"), "version"),
        (STEPS.replace("when: critical", "when: sometimes"), "when"),
        (STEPS + "colour: red\n", "colour"),
        ("type: [", "not valid YAML"),
    ],
)
def test_a_bad_procedure_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse(text, "x.yaml")


def test_an_invalid_edit_keeps_the_previous_edition(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(STEPS)
    catalogue = Catalogue(tmp_path)
    assert catalogue.get("x") is not None and catalogue.get("x").version == 2  # type: ignore[union-attr]
    (tmp_path / "x.yaml").write_text(STEPS.replace("version: 2", "version: 3").replace("{id: c,", "{id: a,"))
    assert catalogue.get("x").version == 2  # type: ignore[union-attr]
    (tmp_path / "y.yaml").write_text(STEPS)  # declares type x: refused, the type is the file's name
    assert [p.type for p in catalogue.types()] == ["x"]


def test_the_shipped_procedures_are_valid_and_group_the_shipped_rules() -> None:
    catalogue = Catalogue(REPO_ROOT / "sop")
    types = {p.type: p for p in catalogue.types()}
    assert {"flood", "traffic", "public_order", "report"} <= set(types)
    rules = {r.id for r in parse_rules((REPO_ROOT / "dashboards" / "rules.yaml").read_text()).rules}
    grouped = [r for p in types.values() for r in p.grouping.rules]
    assert set(grouped) <= rules and len(grouped) == len(set(grouped))  # each rule feeds one type
    flood = [s.id for s in types["flood"].steps]
    for step in ("notify_committee", "dispatch_drainage", "start_pumps", "place_barriers", "traffic_diversion"):
        assert step in flood

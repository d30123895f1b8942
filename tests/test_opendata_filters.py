"""$filter cases of the kinds FROST-Server's tests cover: comparison, logical, arithmetic, string, date/time, geo,
navigation paths and null, each against the open data fixture through a real server."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from opendata import latest
from opendata.filters import STA_FUNCTIONS, parse
from opendata.options import parse_expand
from opendata.query import entity_link
from tests.opendata_fixtures import CAMERA, T0, THING, TRAFFIC, open_data_fixture, sta_fixture  # noqa: F401 (fixtures)

ISO0 = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
ISO1 = (T0 + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
NEAR = "POLYGON((106.69 10.77, 106.71 10.77, 106.71 10.78, 106.69 10.78, 106.69 10.77))"
TRAFFIC_BOX = "POLYGON((106.6 10.79, 106.7 10.79, 106.7 10.81, 106.6 10.81, 106.6 10.79))"

# Observations of the precondition Thing: 10 and 12.5 cm, 0 and 3 mm/h, at T0 and T0 + 1 min.
OBSERVATIONS = [
    ("result eq 10", {10.0}),
    ("result ne 10", {12.5, 0.0, 3.0}),
    ("result gt 3", {10.0, 12.5}),
    ("result ge 3", {3.0, 10.0, 12.5}),
    ("result lt 3", {0.0}),
    ("result le 3", {0.0, 3.0}),
    ("result eq 12.5", {12.5}),
    ("result in (0, 3)", {0.0, 3.0}),
    ("result gt 1 and result lt 11", {3.0, 10.0}),
    ("result lt 1 or result gt 11", {0.0, 12.5}),
    ("not (result gt 1)", {0.0}),
    ("(result eq 0 or result eq 3) and result gt 1", {3.0}),
    ("result add 2 eq 12", {10.0}),
    ("result sub 2 eq 1", {3.0}),
    ("result mul 2 eq 25", {12.5}),
    ("result div 2 eq 5", {10.0}),
    ("result mod 2 eq 1", {3.0}),
    ("result add 1 mul 2 eq 5", {3.0}),  # mul binds first
    ("-result lt -11", {12.5}),
    ("floor(result) eq 12", {12.5}),
    ("ceiling(result) eq 13", {12.5}),
    ("round(result) eq 3", {3.0}),
    (f"phenomenonTime gt {ISO0}", {12.5, 3.0}),
    (f"phenomenonTime eq {ISO0}", {10.0, 0.0}),
    (f"resultTime ge {ISO1}", {12.5, 3.0}),
    (f"minute(phenomenonTime) eq {(T0 + timedelta(minutes=1)).minute}", {12.5, 3.0}),
    (f"hour(phenomenonTime) eq {T0.hour}", {0.0, 3.0, 10.0, 12.5}),
    (
        f"year(phenomenonTime) eq {T0.year} and month(phenomenonTime) eq {T0.month} "
        f"and day(phenomenonTime) eq {T0.day}",
        {0.0, 3.0, 10.0, 12.5},
    ),
    ("second(phenomenonTime) eq 0", {0.0, 3.0, 10.0, 12.5}),
    (f"date(phenomenonTime) eq {T0.date().isoformat()}", {0.0, 3.0, 10.0, 12.5}),
    ("phenomenonTime gt now() sub duration'P1D'", {0.0, 3.0, 10.0, 12.5}),
    ("phenomenonTime lt now()", {0.0, 3.0, 10.0, 12.5}),
    ("phenomenonTime lt now() sub duration'P1D'", set()),
    ("Datastream/ObservedProperty/id eq 'water_level_cm'", {10.0, 12.5}),
    ("Datastream/unitOfMeasurement/symbol eq 'mm/h' and result gt 0", {3.0}),
    (f"FeatureOfInterest/id eq '{THING}' and result eq 3", {3.0}),
    ("Datastream/properties/resolution eq 'raw' and result lt 1", {0.0}),
]

# The three public test Things: flood "Ben Thanh flood sensor", traffic "Dien Bien Phu detector",
# camera "Nguyen Hue camera".
THINGS = [
    ("name eq 'Ben Thanh flood sensor'", {THING}),
    ("contains(name, 'Bien')", {TRAFFIC}),
    ("substringof('camera', name)", {CAMERA}),
    ("startswith(name, 'Ben')", {THING}),
    ("endswith(name, 'detector')", {TRAFFIC}),
    ("length(name) eq 22", {THING, TRAFFIC}),
    ("indexof(name, 'Thanh') eq 4", {THING}),
    ("substring(name, 4) eq 'Thanh flood sensor'", {THING}),
    ("substring(name, 0, 3) eq 'Ngu'", {CAMERA}),
    ("tolower(name) eq 'nguyen hue camera'", {CAMERA}),
    ("toupper(name) eq 'DIEN BIEN PHU DETECTOR'", {TRAFFIC}),
    ("trim(concat(' ', name)) eq 'Ben Thanh flood sensor'", {THING}),
    ("concat(name, '!') eq 'Nguyen Hue camera!'", {CAMERA}),
    ("contains(name, '%')", set()),  # a literal %, not a wildcard
    ("properties/kind eq 'traffic'", {TRAFFIC}),
    ("properties/kind ne 'traffic' and not startswith(name, 'Ben')", {CAMERA}),
    ("properties/zone eq null", {THING, TRAFFIC, CAMERA}),
    ("properties/zone ne null", set()),
    # any/all over a collection (EXISTS through the views: withheld streams are not there to match)
    ("Datastreams/any(d: d/unitOfMeasurement/symbol eq 'cm')", {THING}),
    ("Datastreams/any(d: d/ObservedProperty/id eq 'vehicle_count')", {TRAFFIC, CAMERA}),
    ("Datastreams/all(d: d/properties/resolution eq 'raw')", {THING}),  # traffic has hourly aggregates too
    ("Datastreams/any(d: d/properties/resolution eq 'PT1H')", {TRAFFIC, CAMERA}),
    ("Datastreams/any(d: d/Observations/any(o: o/result gt 50))", {TRAFFIC}),
    ("Datastreams/any()", {THING, TRAFFIC, CAMERA}),
    ("not Datastreams/any(d: d/ObservedProperty/id eq 'battery_pct')", {THING, TRAFFIC, CAMERA}),
    ("Datastreams/any(d: startswith(d/name, name) and d/Thing/id eq id)", {THING, TRAFFIC, CAMERA}),
    (f"Locations/any(l: st_within(l/location, geography'{NEAR}'))", {THING, CAMERA}),
]

# Locations (coordinates as published: the camera's rounded to 3 places).
LOCATIONS = [
    (f"st_within(location, geography'{NEAR}')", {THING, CAMERA}),
    (f"not st_within(location, geography'{NEAR}')", {TRAFFIC}),
    ("geo.distance(location, geography'POINT(106.65 10.8)') lt 0.01", {TRAFFIC}),
    ("geo.distance(location, geography'POINT(106.65 10.8)') gt 0.01", {THING, CAMERA}),
    (f"geo.intersects(location, geography'{TRAFFIC_BOX}')", {TRAFFIC}),
    (f"st_intersects(location, geography'{TRAFFIC_BOX}')", {TRAFFIC}),
    (f"st_disjoint(location, geography'{NEAR}')", {TRAFFIC}),
    ("st_equals(location, geography'POINT(106.65 10.8)')", {TRAFFIC}),
    ("st_equals(location, geography'POINT(106.703 10.775)')", {CAMERA}),
    (f"st_contains(geography'{NEAR}', location)", {THING, CAMERA}),
]


def ids(sta: str, collection: str, scope: str, expr: str) -> list:  # type: ignore[type-arg]
    """The collection's values (results or ids) matching ``(expr) and scope``."""
    resp = httpx.get(f"{sta}/{collection}", params={"$filter": f"({expr}) and {scope}", "$top": "1000"}, timeout=30)
    assert resp.status_code == 200, f"{expr}: {resp.text[:300]}"
    key = "result" if collection == "Observations" else "@iot.id"
    return [e[key] for e in resp.json()["value"]]


@pytest.mark.parametrize(("expr", "expected"), OBSERVATIONS, ids=[c[0] for c in OBSERVATIONS])
def test_observation_filters(sta: str, expr: str, expected: set[float]) -> None:
    found = ids(sta, "Observations", f"Datastream/Thing/id eq '{THING}'", expr)
    assert sorted(found) == sorted(expected)


@pytest.mark.parametrize(("expr", "expected"), THINGS, ids=[c[0] for c in THINGS])
def test_thing_filters(sta: str, expr: str, expected: set[str]) -> None:
    assert set(ids(sta, "Things", "startswith(id, 'T-OD-')", expr)) == expected


@pytest.mark.parametrize(("expr", "expected"), LOCATIONS, ids=[c[0] for c in LOCATIONS])
def test_geo_filters(sta: str, expr: str, expected: set[str]) -> None:
    assert set(ids(sta, "Locations", "startswith(id, 'T-OD-')", expr)) == expected


def test_there_are_at_least_forty_filter_cases() -> None:
    assert len(OBSERVATIONS) + len(THINGS) + len(LOCATIONS) >= 40


@pytest.mark.parametrize("name", sorted(STA_FUNCTIONS))
def test_every_sensorthings_function_parses(name: str) -> None:
    """The STA functions go through odata-query's parser (opendata.filters patches one hook of the pinned version)."""
    args = "'a', name" if name == "substringof" else "location, geography'POINT(1 2)'"
    tree = parse(f"{name}({args})")
    assert type(tree).__name__ == "Call" and tree.func.full_name() == name


@pytest.mark.parametrize(
    ("expand", "fast"),
    [
        ("Observations($top=1;$orderby=phenomenonTime desc)", True),
        ("Observations($orderby=phenomenonTime  DESC;$top=1)", True),
        ("Observations($top=2;$orderby=phenomenonTime desc)", False),
        ("Observations($top=1;$orderby=phenomenonTime)", False),
        ("Observations($top=1;$orderby=phenomenonTime desc;$filter=result gt 1)", False),
        ("Observations($top=1;$skip=1;$orderby=phenomenonTime desc)", False),
    ],
)
def test_latest_path_is_taken_only_for_the_newest_observation(expand: str, fast: bool) -> None:
    (item,) = parse_expand(expand)
    assert latest.applies(item.name, item.options) is fast


@pytest.mark.parametrize(
    ("ident", "link"),
    [
        ("FL-Q1-001:water_level_cm.hourly_mean", "b/Datastreams('FL-Q1-001:water_level_cm.hourly_mean')"),
        ("flood.Acme Corp", "b/Datastreams('flood.Acme%20Corp')"),
        ("it's", "b/Datastreams('it''s')"),
    ],
)
def test_entity_links_quote_ids_only_when_needed(ident: str, link: str) -> None:
    assert entity_link("b", "Datastreams", ident) == link


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("name/any(x: x eq 'a')", "any() and all() apply to a collection of Things (Locations, HistoricalLocations"),
        ("Datastreams/any(d: d)", "name a property of d"),
    ],
)
def test_lambdas_that_cannot_be_answered_are_400(sta: str, expr: str, message: str) -> None:
    resp = httpx.get(f"{sta}/Things", params={"$filter": expr}, timeout=30)
    assert resp.status_code == 400 and message in resp.json()["message"], resp.text

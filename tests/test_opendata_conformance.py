"""SensorThings 1.1 read-only, self-tested: the abstract test suite's Level 1 (Sensing Core) and the read parts of
Level 3 (filter, expand, select, orderby, top/skip, count), on its precondition data, through a real server.

Not an OGC certification: these tests are written from the specification's test suite, not run by OGC.
"""

from __future__ import annotations

import httpx
import pytest

from tests.opendata_fixtures import CAMERA, THING, TRAFFIC, open_data_fixture, sta_fixture  # noqa: F401 (fixtures)

REQUIRED = {
    "Things": {"name", "description"},
    "Locations": {"name", "description", "encodingType", "location"},
    "HistoricalLocations": {"time"},
    "Sensors": {"name", "description", "encodingType", "metadata"},
    "ObservedProperties": {"name", "definition", "description"},
    "Datastreams": {"name", "description", "unitOfMeasurement", "observationType"},
    "Observations": {"phenomenonTime", "resultTime", "result"},
    "FeaturesOfInterest": {"name", "description", "encodingType", "feature"},
}
NAVIGATION = {
    "Things": {"Locations", "HistoricalLocations", "Datastreams"},
    "Locations": {"Things", "HistoricalLocations"},
    "HistoricalLocations": {"Thing", "Locations"},
    "Sensors": {"Datastreams"},
    "ObservedProperties": {"Datastreams"},
    "Datastreams": {"Thing", "Sensor", "ObservedProperty", "Observations"},
    "Observations": {"Datastream", "FeatureOfInterest"},
    "FeaturesOfInterest": {"Observations"},
}
# From the precondition Thing to one entity of every type.
REACH = {
    "Things": f"Things('{THING}')",
    "Locations": f"Things('{THING}')/Locations",
    "HistoricalLocations": f"Things('{THING}')/HistoricalLocations",
    "Datastreams": f"Things('{THING}')/Datastreams",
    "Sensors": f"Datastreams('{THING}:water_level_cm')/Sensor",
    "ObservedProperties": f"Datastreams('{THING}:water_level_cm')/ObservedProperty",
    "Observations": f"Datastreams('{THING}:water_level_cm')/Observations",
    "FeaturesOfInterest": f"Datastreams('{THING}:water_level_cm')/Observations?$top=1&$expand=FeatureOfInterest",
}


def get(sta: str, path: str, status: int = 200) -> dict:  # type: ignore[type-arg]
    """GET ``path`` below the service root, expecting ``status``."""
    resp = httpx.get(f"{sta}/{path}" if path else sta, timeout=30)
    assert resp.status_code == status, f"{path}: {resp.status_code} {resp.text[:300]}"
    return resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {"text": resp.text}


def one(body: dict) -> dict:  # type: ignore[type-arg]
    """The entity of an entity response, or the first of a collection."""
    return body["value"][0] if "value" in body else body


def test_service_root_lists_every_entity_set(sta: str) -> None:
    body = get(sta, "")
    assert {e["name"]: e["url"] for e in body["value"]} == {name: f"{sta}/{name}" for name in REQUIRED}
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel" in body["serverSettings"]["conformance"]


@pytest.mark.parametrize("entity_type", sorted(REQUIRED))
def test_entity_type_has_id_self_link_required_properties_and_navigation(sta: str, entity_type: str) -> None:
    entity = one(get(sta, REACH[entity_type]))
    if entity_type == "FeaturesOfInterest":
        entity = entity["FeatureOfInterest"]
    assert "@iot.id" in entity and entity["@iot.selfLink"].startswith(f"{sta}/{entity_type}(")
    assert REQUIRED[entity_type] <= set(entity), set(entity)
    links = {k.removesuffix("@iot.navigationLink") for k in entity if k.endswith("@iot.navigationLink")}
    assert links == NAVIGATION[entity_type]
    # The selfLink answers the same entity; each navigation link answers.
    assert httpx.get(entity["@iot.selfLink"]).json()["@iot.id"] == entity["@iot.id"]
    for name in links:
        resp = httpx.get(entity[f"{name}@iot.navigationLink"])
        assert resp.status_code == 200, (name, resp.text[:200])
        body = resp.json()
        assert ("value" in body) == name.endswith("s") or name == "HistoricalLocations"


def test_collections_of_every_type_answer(sta: str) -> None:
    for name in REQUIRED:
        body = get(sta, f"{name}?$top=2")
        assert isinstance(body["value"], list)
        for entity in body["value"]:
            assert REQUIRED[name] <= set(entity)


def test_precondition_data_is_one_thing_one_location_two_datastreams_four_observations(sta: str) -> None:
    assert get(sta, f"Things('{THING}')")["name"] == "Ben Thanh flood sensor"
    locations = get(sta, f"Things('{THING}')/Locations")["value"]
    assert len(locations) == 1 and locations[0]["location"] == {"type": "Point", "coordinates": [106.6981, 10.7723]}
    datastreams = get(sta, f"Things('{THING}')/Datastreams?$orderby=id")["value"]
    assert [d["@iot.id"] for d in datastreams] == [f"{THING}:rainfall_mm_h", f"{THING}:water_level_cm"]
    units = {d["unitOfMeasurement"]["symbol"] for d in datastreams}
    assert units == {"mm/h", "cm"}  # from ioc/kinds.yaml
    body = get(sta, f"Observations?$filter=Datastream/Thing/id eq '{THING}'&$count=true")
    assert body["@iot.count"] == 4 and sorted(o["result"] for o in body["value"]) == [0.0, 3.0, 10.0, 12.5]


def test_property_and_raw_value(sta: str) -> None:
    assert get(sta, f"Things('{THING}')/name") == {"name": "Ben Thanh flood sensor"}
    assert get(sta, f"Things('{THING}')/name/$value")["text"] == "Ben Thanh flood sensor"
    assert get(sta, f"Datastreams('{THING}:water_level_cm')/unitOfMeasurement")["unitOfMeasurement"]["name"] == (
        "centimetre"
    )


def test_deep_navigation_path(sta: str) -> None:
    body = get(sta, f"Things('{THING}')/Datastreams('{THING}:water_level_cm')/Observations?$orderby=result")
    assert [o["result"] for o in body["value"]] == [10.0, 12.5]
    assert get(sta, f"Observations('{body['value'][0]['@iot.id']}')/Datastream/Thing")["@iot.id"] == THING


@pytest.mark.parametrize(
    "path", ["Things('no-such')", "Nothings", f"Things('{THING}')/Nothing", "Datastreams('x:y')/Thing"]
)
def test_missing_entities_are_404(sta: str, path: str) -> None:
    assert get(sta, path, 404)["code"] == 404


# ---- Level 3 (read): $select, $expand, $orderby, $top, $skip, $count, $filter


def test_select_returns_only_the_chosen_properties(sta: str) -> None:
    thing = get(sta, f"Things('{THING}')?$select=name,description")
    assert set(thing) == {"name", "description"}
    with_id = get(sta, f"Things('{THING}')?$select=id,Datastreams")
    assert set(with_id) == {"@iot.id", "@iot.selfLink", "Datastreams@iot.navigationLink"}


def test_expand_nested_with_its_own_options(sta: str) -> None:
    path = (
        f"Things('{THING}')?$expand=Datastreams($orderby=id desc;$select=id,name;"
        "$expand=Observations($orderby=result desc;$top=1;$count=true),ObservedProperty)"
    )
    thing = get(sta, path)
    streams = thing["Datastreams"]
    assert [d["@iot.id"] for d in streams] == [f"{THING}:water_level_cm", f"{THING}:rainfall_mm_h"]
    assert (
        set(streams[0]) >= {"@iot.id", "name", "Observations", "ObservedProperty"} and "description" not in streams[0]
    )
    assert [o["result"] for o in streams[0]["Observations"]] == [12.5]
    assert streams[0]["Observations@iot.count"] == 2 and "Observations@iot.nextLink" in streams[0]
    assert streams[1]["ObservedProperty"]["@iot.id"] == "rainfall_mm_h"
    # The path form: Datastreams/Observations.
    flat = get(sta, f"Things('{THING}')?$expand=Datastreams/Observations")
    assert sum(len(d["Observations"]) for d in flat["Datastreams"]) == 4


def test_expand_with_filter_and_to_one(sta: str) -> None:
    body = get(sta, f"Observations?$filter=Datastream/Thing/id eq '{THING}'&$expand=Datastream($select=id)")
    assert {o["Datastream"]["@iot.id"] for o in body["value"]} == {f"{THING}:water_level_cm", f"{THING}:rainfall_mm_h"}
    thing = get(sta, f"Things('{THING}')?$expand=Datastreams($filter=unitOfMeasurement/symbol eq 'cm')")
    assert [d["@iot.id"] for d in thing["Datastreams"]] == [f"{THING}:water_level_cm"]


def test_orderby_both_ways_and_by_two_keys(sta: str) -> None:
    base = f"Observations?$filter=Datastream/Thing/id eq '{THING}'"
    assert [o["result"] for o in get(sta, base + "&$orderby=result")["value"]] == [0.0, 3.0, 10.0, 12.5]
    assert [o["result"] for o in get(sta, base + "&$orderby=result desc")["value"]] == [12.5, 10.0, 3.0, 0.0]
    two = get(sta, base + "&$orderby=phenomenonTime desc,result asc")["value"]
    assert [o["result"] for o in two] == [3.0, 12.5, 0.0, 10.0]


def test_top_skip_next_link_and_count(sta: str) -> None:
    base = f"Observations?$filter=Datastream/Thing/id eq '{THING}'&$orderby=result&$count=true"
    first = get(sta, base + "&$top=3")
    assert first["@iot.count"] == 4 and [o["result"] for o in first["value"]] == [0.0, 3.0, 10.0]
    second = httpx.get(first["@iot.nextLink"]).json()
    assert [o["result"] for o in second["value"]] == [12.5] and "@iot.nextLink" not in second
    assert [o["result"] for o in get(sta, base + "&$skip=2")["value"]] == [10.0, 12.5]
    assert get(sta, base + "&$top=0")["value"] == []
    assert "@iot.count" not in get(sta, f"Things('{THING}')/Datastreams?$count=false")


def test_hourly_aggregates_of_raw_streams_are_datastreams_of_their_own(sta: str) -> None:
    streams = get(sta, f"Things('{TRAFFIC}')/Datastreams?$filter=ObservedProperty/id eq 'vehicle_count'&$orderby=id")
    assert [d["@iot.id"] for d in streams["value"]] == [
        f"{TRAFFIC}:vehicle_count",
        f"{TRAFFIC}:vehicle_count.hourly_max",
        f"{TRAFFIC}:vehicle_count.hourly_mean",
        f"{TRAFFIC}:vehicle_count.hourly_min",
    ]
    for stat, value in (("mean", 47.5), ("min", 40.0), ("max", 55.0)):
        (obs,) = get(sta, f"Datastreams('{TRAFFIC}:vehicle_count.hourly_{stat}')/Observations")["value"]
        assert obs["result"] == value and obs["phenomenonTime"].count("/") == 1
        assert get(sta, f"Observations('{obs['@iot.id']}')/Datastream")["@iot.id"].endswith(stat)


def test_latest_observation_of_every_datastream_matches_the_full_query(sta: str) -> None:
    fast = get(
        sta,
        "Datastreams?$filter=startswith(id, 'T-OD-')&$top=1000"
        "&$expand=Observations($top=1;$orderby=phenomenonTime desc)",
    )["value"]
    assert len(fast) >= 10
    for stream in fast:
        full = get(sta, f"Datastreams('{stream['@iot.id']}')/Observations?$top=1&$orderby=phenomenonTime desc")
        assert stream["Observations"] == full["value"], stream["@iot.id"]


def test_data_array_result_format(sta: str) -> None:
    body = get(
        sta,
        f"Observations?$filter=Datastream/id eq '{THING}:water_level_cm'&$orderby=result"
        "&$resultFormat=dataArray&$select=result,phenomenonTime",
    )
    (group,) = body["value"]
    assert group["components"] == ["result", "phenomenonTime"] and group["dataArray@iot.count"] == 2
    assert [row[0] for row in group["dataArray"]] == [10.0, 12.5]
    assert group["Datastream@iot.navigationLink"].endswith(f"Datastreams('{THING}:water_level_cm')")


def test_hourly_datastream_is_a_datastream_of_its_own(sta: str) -> None:
    stream = get(sta, f"Datastreams('{CAMERA}:people_count')")
    assert stream["properties"]["resolution"] == "PT1H" and stream["properties"]["statistic"] == "mean"
    obs = get(sta, f"Datastreams('{CAMERA}:people_count')/Observations?$orderby=phenomenonTime")["value"]
    assert len(obs) == 2 and all("/" in o["phenomenonTime"] for o in obs)  # an interval: start/end


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("Things?$filter=nosuch eq 1", "has no property 'nosuch'"),
        ("Things?$filter=name eq", "cannot parse"),
        ("Things?$filter=frobnicate(name) eq 1", "frobnicate"),
        ("Things?$top=x", "$top takes a non-negative integer"),
        ("Things?$top=100001", "$top is at most"),
        ("Things('a%00b')", "NUL character"),
        ("Things?$filter=name eq 'a%00b'", "NUL character"),
        ("Things?$frob=1", "unknown query option '$frob'"),
        ("Things?$select=nosuch", "$select: Things has no property 'nosuch'"),
        ("Things?$expand=Nothing", "no navigation property 'Nothing'"),
        ("Things?$resultFormat=dataArray", "dataArray is for Observations"),
        ("Things?$count=yes", "$count is true or false"),
        ("Locations?$filter=location eq 1", "st_equals"),
        ("Things?$filter=Datastreams/name eq 'x'", "is a collection"),
        ("Things?$orderby=name sideways", "cannot parse"),
        ("Things?$filter=properties/kind gt 3", "does not fit the data"),
        ("Things/Datastreams", "needs an id"),
        ("Locations?$filter=st_within(location, geography'LINESTRING(1 2, 3 4)')", "unsupported geometry"),
    ],
)
def test_bad_requests_are_400_with_a_clear_message(sta: str, path: str, message: str) -> None:
    body = get(sta, path, 400)
    assert body["code"] == 400 and message in body["message"], body


def test_a_real_sta_client_reads_the_service(sta: str) -> None:
    import frost_sta_client as fsc

    service = fsc.SensorThingsService(sta)
    thing = service.things().find(THING)
    assert thing.name == "Ben Thanh flood sensor"
    streams = service.datastreams().query().filter(f"Thing/id eq '{THING}'").list()
    names = sorted(d.id for d in streams)
    assert names == [f"{THING}:rainfall_mm_h", f"{THING}:water_level_cm"]
    observations = (
        service.observations().query().filter(f"Datastream/id eq '{THING}:water_level_cm'").orderby("result", "ASC")
    )
    assert [o.result for o in observations.list()] == [10.0, 12.5]
    things = service.things().query().filter(f"startswith(id, 'T-OD-') and id ne '{TRAFFIC}'").list()
    assert sorted(t.id for t in things) == sorted([THING, CAMERA])

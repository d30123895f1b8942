"""Privacy by configuration: a withheld device, a non-public metric, raw camera counts and event attributes never
leave through any route of the open data API (entity, navigation, expand, filter, any/all, dataArray). The bulk files
and the MQTT push have their own tests (tests/test_opendata_bulk.py, tests/test_opendata_mqtt.py)."""

from __future__ import annotations

import httpx
import pytest
import yaml

from ioc.errors import ConfigError
from ioc.kinds import load_kinds
from opendata.config import DEFAULT_FILE, OpenDataConfig, load_config
from tests.opendata_fixtures import (  # noqa: F401 (fixtures)
    CAMERA,
    SECRET,
    SECRET_VALUE,
    THING,
    WITHHELD_VALUE,
    camera_means,
    open_data_fixture,
    sta_fixture,
)

# Every route a client could try to reach what is withheld.
PROBES = [
    "Things",
    "Things?$top=1000&$expand=Datastreams/Observations($top=1000),Locations",
    f"Things?$filter=id eq '{SECRET}'",
    "Things?$filter=startswith(id, 'T-OD-S')",
    "Datastreams?$top=1000&$expand=Observations($top=1000)",
    "Datastreams?$top=1000&$expand=Observations($top=1;$orderby=phenomenonTime desc)",  # the latest-values path
    f"Datastreams?$filter=Thing/id eq '{SECRET}'",
    f"Observations?$top=1000&$filter=result eq {SECRET_VALUE}",
    f"Observations?$filter=Datastream/Thing/id eq '{SECRET}'",
    f"Observations?$filter=startswith(id, '{SECRET}')&$resultFormat=dataArray",
    "Observations?$top=1000&$filter=Datastream/ObservedProperty/id eq 'battery_pct'",
    f"Observations?$top=1000&$filter=Datastream/Thing/id eq '{CAMERA}'&$expand=FeatureOfInterest,Datastream",
    "Locations?$top=1000&$expand=Things/Datastreams",
    "FeaturesOfInterest?$top=1000&$expand=Observations($top=1000)",
    "Sensors?$expand=Datastreams($top=1000)",
    "ObservedProperties?$expand=Datastreams($top=1000)",
    "HistoricalLocations?$top=1000&$expand=Thing,Locations",
    f"Things?$filter=Datastreams/any(d: d/Observations/any(o: o/result eq {SECRET_VALUE}))",
    "Things?$filter=Datastreams/any(d: d/ObservedProperty/id eq 'battery_pct')&$expand=Datastreams",
]


@pytest.mark.parametrize("path", PROBES)
def test_withheld_never_leaks(sta: str, path: str) -> None:
    resp = httpx.get(f"{sta}/{path}", timeout=30)
    assert resp.status_code == 200, resp.text[:300]
    assert_nothing_withheld(resp.text)


def assert_nothing_withheld(text: str) -> None:
    """No withheld device, metric, value or event attribute in a response."""
    assert SECRET not in text and str(SECRET_VALUE) not in text
    assert "battery_pct" not in text and str(WITHHELD_VALUE) not in text
    assert "51F-PRIVATE" not in text and "loitering" not in text and "snapshot" not in text


@pytest.mark.parametrize(
    "path",
    [
        f"Things('{SECRET}')",
        f"Locations('{SECRET}')",
        f"Datastreams('{SECRET}:water_level_cm')",
        f"Datastreams('{THING}:battery_pct')",
        f"Things('{SECRET}')/Datastreams",
        f"FeaturesOfInterest('{SECRET}')",
    ],
)
def test_withheld_entities_are_404(sta: str, path: str) -> None:
    assert httpx.get(f"{sta}/{path}", timeout=30).status_code == 404


def test_camera_publishes_only_hourly_means(sta: str) -> None:
    body = httpx.get(
        f"{sta}/Observations",
        params={"$filter": f"Datastream/Thing/id eq '{CAMERA}'", "$orderby": "phenomenonTime", "$top": "1000"},
    ).json()
    results = [o["result"] for o in body["value"]]
    assert results == pytest.approx(camera_means())  # two complete hours, not 120 minutes
    assert all(o["phenomenonTime"].count("/") == 1 for o in body["value"])


def test_locations_are_rounded_per_kind(sta: str) -> None:
    camera = httpx.get(f"{sta}/Locations('{CAMERA}')").json()["location"]["coordinates"]
    thing = httpx.get(f"{sta}/Locations('{THING}')").json()["location"]["coordinates"]
    assert camera == [106.703, 10.775] and thing == [106.6981, 10.7723]  # stored 106.703444 / 106.698123


def test_policy_is_validated_at_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    kinds = load_kinds(None)
    bad = {
        "kinds:\n  lava: {metrics: [heat]}\n": "unknown kind 'lava'",
        "kinds:\n  flood: {metrics: [loudness]}\n": "has no metric loudness",
        "kinds:\n  flood: {metrics: [water_level_cm], resolution: daily}\n": "resolution",
        "location_decimals: {default: 9}\n": "0 to 6",
        "surprise: 1\n": "surprise",
    }
    catalogue = yaml.safe_dump({"catalogue": yaml.safe_load(DEFAULT_FILE.read_text())["catalogue"]})
    for text, message in {**bad, "kinds: {}\n": "catalogue\n  Field required"}.items():
        path = tmp_path / "open-data.yaml"
        path.write_text(text + (catalogue if "kinds: {}" not in text else ""))
        with pytest.raises(ConfigError, match=message):
            load_config(path, kinds)
    shipped = load_config(None, kinds)
    assert isinstance(shipped, OpenDataConfig) and shipped.kinds["camera"].resolution == "hour"
    assert "battery_pct" not in shipped.kinds["flood"].metrics

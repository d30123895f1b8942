"""The SensorThings entity sets as SQLAlchemy Core views over the ioc tables, limited to what the policy makes public.

Each entity set is one subquery whose columns carry the STA property names (plus hidden keys starting
with ``_``); every route (entity, navigation, ``$expand``, ``$filter`` paths) reads through these views,
so a device, metric or resolution the policy does not publish cannot be reached by any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Float,
    String,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.sql import ColumnElement, Subquery

from ioc.kinds import KindSpec
from ioc.tables import devices, zones
from opendata.config import OpenDataConfig
from opendata.observations import case_of, observations_view

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
GEOJSON = "application/geo+json"
UNIT_NAMES = {"cm": "centimetre", "mm/h": "millimetre per hour", "%": "percent", "count": "count",
              "s": "second", "km/h": "kilometre per hour"}  # fmt: skip


@dataclass(frozen=True)
class Relation:
    """A navigation property: the target entity set and the (target column, source column) pairs that join them."""

    target: str
    many: bool
    pairs: tuple[tuple[str, str], ...]


@dataclass
class EntitySet:
    """One entity set: its view, the properties it returns (name -> column) and its navigation properties."""

    name: str  # collection name, e.g. "Things"
    view: Subquery
    properties: tuple[str, ...]
    relations: dict[str, Relation]
    geometry: dict[str, tuple[str, str]] = field(default_factory=dict)  # property -> (lon column, lat column)
    json_properties: frozenset[str] = frozenset()

    def col(self, name: str) -> ColumnElement[Any]:
        """The view's column ``name``."""
        return self.view.c[name]


def constants(name: str, types: dict[str, Any], rows: list[tuple[Any, ...]]) -> Subquery:
    """A small table of the policy's constants, as ``SELECT ... UNION ALL SELECT ...``.

    Not ``values()``: SQLAlchemy cannot cache a statement holding one, and compiling the views again took
    ~25 ms of every request. The values are rendered into the SQL when it runs (``literal_execute``), so the
    statement is cached once and the planner still sees constants.
    """
    selects = [
        select(*(literal(v, t, literal_execute=True).label(c) for (c, t), v in zip(types.items(), row, strict=True)))
        for row in rows
    ]
    return (union_all(*selects) if len(selects) > 1 else selects[0]).subquery(name)


def public_devices(config: OpenDataConfig) -> Any:
    """Devices the policy publishes, with coordinates (their own, else their zone's) rounded per kind."""
    kinds = list(config.kinds)
    decimals = constants(
        "open_places", {"kind": String, "places": Float}, [(k, float(config.decimals(k))) for k in kinds] or [("", 0.0)]
    )
    lat = func.coalesce(devices.c.lat, zones.c.lat)
    lon = func.coalesce(devices.c.lon, zones.c.lon)
    factor = func.power(literal(10.0), decimals.c.places)
    return (
        select(
            devices.c.device_id,
            devices.c.kind,
            devices.c.vendor,
            devices.c.name,
            devices.c.zone,
            devices.c.status,
            devices.c.created_at,
            (func.round(lat * factor) / factor).label("lat"),
            (func.round(lon * factor) / factor).label("lon"),
        )
        .select_from(
            devices.outerjoin(zones, zones.c.zone_id == devices.c.zone).join(
                decimals, decimals.c.kind == devices.c.kind
            )
        )
        .where(devices.c.enabled, devices.c.device_id.not_in(sorted(config.withheld_devices)))
        .subquery("open_devices")
    )


def _point(lon: ColumnElement[Any], lat: ColumnElement[Any]) -> ColumnElement[Any]:
    """A GeoJSON Point as jsonb."""
    return func.jsonb_build_object("type", "Point", "coordinates", func.jsonb_build_array(lon, lat))


def public_streams(config: OpenDataConfig, kinds: dict[str, KindSpec]) -> Any:
    """One row per public stream of a kind: the metric as published (raw, or the kind's hourly statistic) and,
    for raw kinds, each extra hourly aggregate (stream ``water_level_cm.hourly_mean``)."""
    rows = []
    for kind, policy in config.kinds.items():
        for metric in policy.metrics:
            unit = kinds[kind].metrics[metric].unit
            rows.append((kind, metric, unit, policy.resolution, policy.statistic, metric))
            if policy.resolution == "raw":
                rows += [(kind, metric, unit, "hour", s, f"{metric}.hourly_{s}") for s in policy.hourly]
    names = ("kind", "metric", "unit", "resolution", "statistic", "stream")
    return constants("open_streams", dict.fromkeys(names, String), rows or [("", "", "", "raw", "mean", "")])


def _vendor(dev: Any) -> ColumnElement[Any]:
    """A device's vendor, ``generic`` when it has none."""
    return func.coalesce(func.nullif(dev.c.vendor, ""), "generic")


def _things(dev: Any, kind_label: ColumnElement[Any]) -> EntitySet:
    """Things: one per public device."""
    view = select(
        dev.c.device_id.label("id"),
        dev.c.name.label("name"),
        (kind_label + literal(" ") + dev.c.device_id).label("description"),
        func.jsonb_build_object("kind", dev.c.kind, "zone", dev.c.zone, "status", dev.c.status).label("properties"),
    ).subquery("Things")
    return EntitySet(
        "Things",
        view,
        ("id", "name", "description", "properties"),
        {
            "Locations": Relation("Locations", True, (("_thing", "id"),)),
            "HistoricalLocations": Relation("HistoricalLocations", True, (("_thing", "id"),)),
            "Datastreams": Relation("Datastreams", True, (("_device", "id"),)),
        },
        json_properties=frozenset({"properties"}),
    )


def _locations(dev: Any) -> EntitySet:
    """Locations: the (rounded) position of each located device."""
    view = (
        select(
            dev.c.device_id.label("id"),
            dev.c.name.label("name"),
            (literal("Location of ") + dev.c.device_id).label("description"),
            literal(GEOJSON).label("encodingType"),
            _point(dev.c.lon, dev.c.lat).label("location"),
            dev.c.device_id.label("_thing"),
            dev.c.lon.label("_lon"),
            dev.c.lat.label("_lat"),
        )
        .where(dev.c.lat.is_not(None))
        .subquery("Locations")
    )
    return EntitySet(
        "Locations",
        view,
        ("id", "name", "description", "encodingType", "location"),
        {
            "Things": Relation("Things", True, (("id", "_thing"),)),
            "HistoricalLocations": Relation("HistoricalLocations", True, (("_thing", "_thing"),)),
        },
        geometry={"location": ("_lon", "_lat")},
        json_properties=frozenset({"location"}),
    )


def _historical_locations(dev: Any) -> EntitySet:
    """HistoricalLocations: one per located device, at its registration time."""
    view = (
        select(dev.c.device_id.label("id"), dev.c.created_at.label("time"), dev.c.device_id.label("_thing"))
        .where(dev.c.lat.is_not(None))
        .subquery("HistoricalLocations")
    )
    return EntitySet(
        "HistoricalLocations",
        view,
        ("id", "time"),
        {
            "Thing": Relation("Things", False, (("id", "_thing"),)),
            "Locations": Relation("Locations", True, (("_thing", "_thing"),)),
        },
    )


def _sensors(dev: Any, kind_label: ColumnElement[Any]) -> EntitySet:
    """Sensors: one per (kind, vendor) pair among the public devices."""
    vendor = _vendor(dev)
    view = (
        select(
            (dev.c.kind + literal(".") + vendor).label("id"),
            (kind_label + literal(" (") + vendor + literal(")")).label("name"),
            (literal("ioc device kind ") + dev.c.kind + literal(", vendor ") + vendor).label("description"),
            literal("text/plain").label("encodingType"),
            (literal("kind=") + dev.c.kind + literal(";vendor=") + vendor).label("metadata"),
        )
        .distinct()
        .subquery("Sensors")
    )
    return EntitySet(
        "Sensors",
        view,
        ("id", "name", "description", "encodingType", "metadata"),
        {"Datastreams": Relation("Datastreams", True, (("_sensor", "id"),))},
    )


def _observed_properties(met: Any) -> EntitySet:
    """ObservedProperties: one per public metric."""
    view = (
        select(
            met.c.metric.label("id"),
            met.c.metric.label("name"),
            (literal("urn:ioc:metric:") + met.c.metric).label("definition"),
            (literal("ioc metric ") + met.c.metric + literal(" in ") + met.c.unit).label("description"),
        )
        .distinct()
        .subquery("ObservedProperties")
    )
    return EntitySet(
        "ObservedProperties",
        view,
        ("id", "name", "definition", "description"),
        {"Datastreams": Relation("Datastreams", True, (("_metric", "id"),))},
    )


def _datastreams_view(dev: Any, met: Any, kinds: dict[str, KindSpec]) -> Subquery:
    """The Datastreams view: one row per (public device, public stream of its kind)."""
    units = {u: UNIT_NAMES.get(u, u) for u in {m.unit for k in kinds.values() for m in k.metrics.values()}}
    hourly = met.c.resolution == "hour"
    return (
        select(
            (dev.c.device_id + literal(":") + met.c.stream).label("id"),
            (dev.c.name + literal(" ") + met.c.stream).label("name"),
            func.concat(
                met.c.metric,
                " of ",
                dev.c.device_id,
                case_of(hourly, {True: ", hourly ", False: ""}),
                case_of(hourly, {True: met.c.statistic, False: ""}),
            ).label("description"),
            literal(MEASUREMENT).label("observationType"),
            func.jsonb_build_object(
                "name",
                func.coalesce(case_of(met.c.unit, units), met.c.unit),
                "symbol",
                met.c.unit,
                "definition",
                literal("urn:ioc:unit:") + met.c.unit,
            ).label("unitOfMeasurement"),
            func.jsonb_build_object(
                "resolution",
                case_of(hourly, {True: "PT1H", False: "raw"}),
                "statistic",
                case_of(hourly, {True: met.c.statistic}),
                "kind",
                dev.c.kind,
            ).label("properties"),
            dev.c.device_id.label("_device"),
            met.c.metric.label("_metric"),
            met.c.stream.label("_stream"),
            met.c.resolution.label("_resolution"),
            met.c.statistic.label("_statistic"),
            (dev.c.kind + literal(".") + _vendor(dev)).label("_sensor"),
        )
        .select_from(dev.join(met, met.c.kind == dev.c.kind))
        .subquery("Datastreams")
    )


_DATASTREAM_PAIRS = (("_device", "_device"), ("_metric", "_metric"), ("_stream", "_stream"))


def _datastreams(dev: Any, met: Any, kinds: dict[str, KindSpec]) -> EntitySet:
    """Datastreams: each public device's public streams."""
    return EntitySet(
        "Datastreams",
        _datastreams_view(dev, met, kinds),
        ("id", "name", "description", "observationType", "unitOfMeasurement", "properties"),
        {
            "Thing": Relation("Things", False, (("id", "_device"),)),
            "Sensor": Relation("Sensors", False, (("id", "_sensor"),)),
            "ObservedProperty": Relation("ObservedProperties", False, (("id", "_metric"),)),
            "Observations": Relation("Observations", True, _DATASTREAM_PAIRS),
        },
        json_properties=frozenset({"unitOfMeasurement", "properties"}),
    )


def _observations(dev: Any, met: Any, timescale: bool) -> EntitySet:
    """Observations: the readings (or hourly aggregates) of the public streams."""
    return EntitySet(
        "Observations",
        observations_view(dev, met, timescale),
        ("id", "phenomenonTime", "resultTime", "result"),
        {
            "Datastream": Relation("Datastreams", False, _DATASTREAM_PAIRS),
            "FeatureOfInterest": Relation("FeaturesOfInterest", False, (("id", "_device"),)),
        },
    )


def _features_of_interest(dev: Any) -> EntitySet:
    """FeaturesOfInterest: where each located device observes."""
    view = (
        select(
            dev.c.device_id.label("id"),
            dev.c.name.label("name"),
            (literal("Where ") + dev.c.device_id + literal(" observes")).label("description"),
            literal(GEOJSON).label("encodingType"),
            _point(dev.c.lon, dev.c.lat).label("feature"),
            dev.c.lon.label("_lon"),
            dev.c.lat.label("_lat"),
        )
        .where(dev.c.lat.is_not(None))
        .subquery("FeaturesOfInterest")
    )
    return EntitySet(
        "FeaturesOfInterest",
        view,
        ("id", "name", "description", "encodingType", "feature"),
        {"Observations": Relation("Observations", True, (("_device", "id"),))},
        geometry={"feature": ("_lon", "_lat")},
        json_properties=frozenset({"feature"}),
    )


def build(config: OpenDataConfig, kinds: dict[str, KindSpec], timescale: bool = False) -> dict[str, EntitySet]:
    """All eight entity sets for ``config`` (``timescale``: the database has TimescaleDB, see ``observations_view``)."""
    dev = public_devices(config)
    met = public_streams(config, kinds)
    labels = {k: kinds[k].label.get("en", k) for k in kinds}
    kind_label = func.coalesce(case_of(dev.c.kind, labels), dev.c.kind)
    sets = [
        _things(dev, kind_label),
        _locations(dev),
        _historical_locations(dev),
        _sensors(dev, kind_label),
        _observed_properties(met),
        _datastreams(dev, met, kinds),
        _observations(dev, met, timescale),
        _features_of_interest(dev),
    ]
    return {s.name: s for s in sets}

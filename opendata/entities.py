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


def build(config: OpenDataConfig, kinds: dict[str, KindSpec], timescale: bool = False) -> dict[str, EntitySet]:
    """All eight entity sets for ``config`` (``timescale``: the database has TimescaleDB, see ``_observations``)."""
    dev = public_devices(config)
    met = public_streams(config, kinds)
    located = dev.c.lat.is_not(None)
    labels = {k: kinds[k].label.get("en", k) for k in kinds}
    kind_label = func.coalesce(case_of(dev.c.kind, labels), dev.c.kind)

    things = select(
        dev.c.device_id.label("id"),
        dev.c.name.label("name"),
        (kind_label + literal(" ") + dev.c.device_id).label("description"),
        func.jsonb_build_object("kind", dev.c.kind, "zone", dev.c.zone, "status", dev.c.status).label("properties"),
    ).subquery("Things")

    locations = (
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
        .where(located)
        .subquery("Locations")
    )

    historical = (
        select(dev.c.device_id.label("id"), dev.c.created_at.label("time"), dev.c.device_id.label("_thing"))
        .where(located)
        .subquery("HistoricalLocations")
    )

    vendor = func.coalesce(func.nullif(dev.c.vendor, ""), "generic")
    sensors = (
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

    observed = (
        select(
            met.c.metric.label("id"),
            met.c.metric.label("name"),
            (literal("urn:ioc:metric:") + met.c.metric).label("definition"),
            (literal("ioc metric ") + met.c.metric + literal(" in ") + met.c.unit).label("description"),
        )
        .distinct()
        .subquery("ObservedProperties")
    )

    units = {u: UNIT_NAMES.get(u, u) for u in {m.unit for k in kinds.values() for m in k.metrics.values()}}
    hourly = met.c.resolution == "hour"
    datastreams = (
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
            (dev.c.kind + literal(".") + vendor).label("_sensor"),
        )
        .select_from(dev.join(met, met.c.kind == dev.c.kind))
        .subquery("Datastreams")
    )

    observations = observations_view(dev, met, timescale)

    features = (
        select(
            dev.c.device_id.label("id"),
            dev.c.name.label("name"),
            (literal("Where ") + dev.c.device_id + literal(" observes")).label("description"),
            literal(GEOJSON).label("encodingType"),
            _point(dev.c.lon, dev.c.lat).label("feature"),
            dev.c.lon.label("_lon"),
            dev.c.lat.label("_lat"),
        )
        .where(located)
        .subquery("FeaturesOfInterest")
    )

    ds_pairs = (("_device", "_device"), ("_metric", "_metric"), ("_stream", "_stream"))
    sets = [
        EntitySet(
            "Things",
            things,
            ("id", "name", "description", "properties"),
            {
                "Locations": Relation("Locations", True, (("_thing", "id"),)),
                "HistoricalLocations": Relation("HistoricalLocations", True, (("_thing", "id"),)),
                "Datastreams": Relation("Datastreams", True, (("_device", "id"),)),
            },
            json_properties=frozenset({"properties"}),
        ),
        EntitySet(
            "Locations",
            locations,
            ("id", "name", "description", "encodingType", "location"),
            {
                "Things": Relation("Things", True, (("id", "_thing"),)),
                "HistoricalLocations": Relation("HistoricalLocations", True, (("_thing", "_thing"),)),
            },
            geometry={"location": ("_lon", "_lat")},
            json_properties=frozenset({"location"}),
        ),
        EntitySet(
            "HistoricalLocations",
            historical,
            ("id", "time"),
            {
                "Thing": Relation("Things", False, (("id", "_thing"),)),
                "Locations": Relation("Locations", True, (("_thing", "_thing"),)),
            },
        ),
        EntitySet(
            "Sensors",
            sensors,
            ("id", "name", "description", "encodingType", "metadata"),
            {
                "Datastreams": Relation("Datastreams", True, (("_sensor", "id"),)),
            },
        ),
        EntitySet(
            "ObservedProperties",
            observed,
            ("id", "name", "definition", "description"),
            {
                "Datastreams": Relation("Datastreams", True, (("_metric", "id"),)),
            },
        ),
        EntitySet(
            "Datastreams",
            datastreams,
            ("id", "name", "description", "observationType", "unitOfMeasurement", "properties"),
            {
                "Thing": Relation("Things", False, (("id", "_device"),)),
                "Sensor": Relation("Sensors", False, (("id", "_sensor"),)),
                "ObservedProperty": Relation("ObservedProperties", False, (("id", "_metric"),)),
                "Observations": Relation("Observations", True, ds_pairs),
            },
            json_properties=frozenset({"unitOfMeasurement", "properties"}),
        ),
        EntitySet(
            "Observations",
            observations,
            ("id", "phenomenonTime", "resultTime", "result"),
            {
                "Datastream": Relation("Datastreams", False, ds_pairs),
                "FeatureOfInterest": Relation("FeaturesOfInterest", False, (("id", "_device"),)),
            },
        ),
        EntitySet(
            "FeaturesOfInterest",
            features,
            ("id", "name", "description", "encodingType", "feature"),
            {
                "Observations": Relation("Observations", True, (("_device", "id"),)),
            },
            geometry={"feature": ("_lon", "_lat")},
            json_properties=frozenset({"feature"}),
        ),
    ]
    return {s.name: s for s in sets}

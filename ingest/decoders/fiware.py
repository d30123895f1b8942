"""FIWARE Smart Data Models (NGSI-LD or NGSI-v2, normalized or keyValues) on ``fiware/{type}/{device_id}``.

Example (keyValues; normalized wraps each attribute as ``{"type": "Property", "value": ...}`` in NGSI-LD,
``{"type": "Number", "value": ..., "metadata": {"unitCode": {"value": ...}}}`` in NGSI-v2)::

    {"id": "urn:ngsi-ld:TrafficFlowObserved:TR-Q3-002", "type": "TrafficFlowObserved",
     "dateObserved": "2026-11-21T07:05:00Z", "dateObservedFrom": "2026-11-21T07:04:00Z",
     "dateObservedTo": "2026-11-21T07:05:00Z", "intensity": 42, "averageVehicleSpeed": 27.5,
     "occupancy": 0.18}

gives vehicle_count=42, avg_speed_kmh=27.5, occupancy_pct=18.0 and interval_s=60 at 07:05:00Z.
Each entity type has its own decoder object, chosen by the topic's ``{type}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.decoders.parsing import (
    Limits,
    field,
    integer,
    kind_of,
    load_json,
    mapping,
    number,
    show,
    text,
    timestamp,
)
from ioc import topics
from ioc.errors import PayloadError
from ioc.reasons import Reason
from ioc.records import Measurement, Record

if TYPE_CHECKING:
    from ingest.decoders import Route

logger = logging.getLogger(__name__)

TOPIC = topics.FIWARE
FORMAT = TOPIC.format
KIND: str | None = None  # depends on the entity type; see ENTITY_DECODERS
CHANNEL: str | None = "telemetry"

# UN/CEFACT unit codes accepted for lengths and speeds, as factors to cm and km/h.
_LENGTH_TO_CM = {None: 100.0, "MTR": 100.0, "CMT": 1.0, "MMT": 0.1}
_SPEED_TO_KMH = {None: 1.0, "KMH": 1.0, "MTS": 3.6}
_UNITLESS: dict[str | None, float] = {None: 1.0}
_RATIO_TO_PCT = {None: 100.0, "C62": 100.0, "P1": 1.0}
# Concentrations: micrograms (GQ, the model's default) or milligrams (GP) per cubic metre, as ug/m3.
_CONCENTRATION_TO_UGM3 = {None: 1.0, "GQ": 1.0, "GP": 1000.0}
_CELSIUS = {None: 1.0, "CEL": 1.0}
AIR_POLLUTANTS = {
    "pm25": "pm25_ugm3",
    "pm10": "pm10_ugm3",
    "no2": "no2_ugm3",
    "o3": "o3_ugm3",
    "co": "co_ugm3",
    "so2": "so2_ugm3",
}

Attribute = tuple[Any, str | None]  # (value, unitCode)


def _attribute(entity: dict[str, Any], name: str) -> Attribute | None:
    """An attribute's value and unit code in any form; None when absent or null."""
    raw = entity.get(name)
    if raw is None:
        return None
    if type(raw) is dict:
        if "value" not in raw:
            raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be a value or a Property with a value")
        unit = raw.get("unitCode")
        metadata = raw.get("metadata")
        if unit is None and type(metadata) is dict and type(metadata.get("unitCode")) is dict:
            unit = metadata["unitCode"].get("value")  # NGSI-v2: the unit is metadata
        if unit is not None and type(unit) is not str:
            raise PayloadError(Reason.BAD_SCHEMA, f"{name}.unitCode must be a string, got {kind_of(unit)}")
        return raw["value"], unit
    return raw, None


def _time_value(value: Any, name: str) -> Any:
    """Unwrap NGSI-LD ``{"@type": "DateTime", "@value": ...}``."""
    if type(value) is dict:
        return field(value, "@value", f"{name}.")
    return value


def _time(entity: dict[str, Any], name: str) -> datetime | None:
    attribute = _attribute(entity, name)
    return None if attribute is None else timestamp(_time_value(attribute[0], name), name)


def _metric(
    entity: dict[str, Any], name: str, units: dict[str | None, float], metric: str, out: dict[str, float]
) -> None:
    attribute = _attribute(entity, name)
    if attribute is None:
        return
    value, unit = attribute
    factor = units.get(unit)
    if factor is None:
        raise PayloadError(Reason.BAD_UNIT, f"{name}.unitCode {show(unit)} is not accepted")
    out[metric] = number(value, name) * factor


def _traffic_flow(entity: dict[str, Any], out: dict[str, float]) -> tuple[datetime, str]:
    _metric(entity, "intensity", _UNITLESS, "vehicle_count", out)
    _metric(entity, "averageVehicleSpeed", _SPEED_TO_KMH, "avg_speed_kmh", out)
    _metric(entity, "occupancy", _RATIO_TO_PCT, "occupancy_pct", out)
    start = _time(entity, "dateObservedFrom")
    end = _time(entity, "dateObservedTo")
    observed = _attribute(entity, "dateObserved")
    time = end
    if observed is not None:
        raw = _time_value(observed[0], "dateObserved")
        if type(raw) is str and "/" in raw:  # an ISO 8601 interval "from/to"
            first, _, last = raw.partition("/")
            start = start or timestamp(first, "dateObserved")
            end = end or timestamp(last, "dateObserved")
            time = timestamp(last, "dateObserved")
        else:
            time = timestamp(raw, "dateObserved")
    if time is None:
        raise PayloadError(Reason.BAD_SCHEMA, "missing field dateObserved")
    if start is not None and end is not None:
        out["interval_s"] = (end - start).total_seconds()
    lane = _attribute(entity, "laneId")
    part = "" if lane is None else f"lane:{integer(lane[0], 'laneId')}"
    if len(part) > 16:
        raise PayloadError(Reason.BAD_SCHEMA, f"laneId is out of range: {show(lane)}")
    return time, part


def _flood_monitoring(entity: dict[str, Any], out: dict[str, float]) -> tuple[datetime, str]:
    _metric(entity, "currentLevel", _LENGTH_TO_CM, "water_level_cm", out)
    time = _time(entity, "observationDateTime") or _time(entity, "dateObserved")
    if time is None:
        raise PayloadError(Reason.BAD_SCHEMA, "missing field observationDateTime")
    return time, ""


def _water_observed(entity: dict[str, Any], out: dict[str, float]) -> tuple[datetime, str]:
    _metric(entity, "waterLevel", _LENGTH_TO_CM, "water_level_cm", out)
    time = _time(entity, "dateObserved")
    if time is None:
        raise PayloadError(Reason.BAD_SCHEMA, "missing field dateObserved")
    return time, ""


def _crowd_flow(entity: dict[str, Any], out: dict[str, float]) -> tuple[datetime, str]:
    _metric(entity, "peopleCount", _UNITLESS, "people_count", out)
    time = _time(entity, "dateObserved")
    if time is None:
        raise PayloadError(Reason.BAD_SCHEMA, "missing field dateObserved")
    return time, ""


def _air_quality(entity: dict[str, Any], out: dict[str, float]) -> tuple[datetime, str]:
    for name, metric in AIR_POLLUTANTS.items():
        _metric(entity, name, _CONCENTRATION_TO_UGM3, metric, out)
    _metric(entity, "temperature", _CELSIUS, "temperature_c", out)
    _metric(entity, "relativeHumidity", _RATIO_TO_PCT, "humidity_pct", out)  # 0..1 in the model
    time = _time(entity, "dateObserved")
    if time is None:
        raise PayloadError(Reason.BAD_SCHEMA, "missing field dateObserved")
    return time, ""


Handler = Callable[[dict[str, Any], dict[str, float]], tuple[datetime, str]]


@dataclass(frozen=True, slots=True)
class EntityDecoder:
    """The decoder of one FIWARE entity type (what ``Route.decoder`` holds for FIWARE topics)."""

    entity_type: str
    kind: str
    handler: Handler

    @property
    def FORMAT(self) -> str:
        """Always ``fiware``."""
        return FORMAT

    @property
    def KIND(self) -> str:
        """The kind devices publishing this entity type usually are."""
        return self.kind

    def decode(self, route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
        """Decode one entity of this type."""
        return self.measurements(mapping(load_json(payload, limits), "entity"))

    def measurements(self, entity: dict[str, Any]) -> list[Record]:
        """The measurements of a parsed entity, which must be of this type."""
        entity_type = text(field(entity, "type"), "type")
        if entity_type != self.entity_type:
            raise PayloadError(
                Reason.BAD_SCHEMA, f"type {show(entity_type)} differs from the topic's {self.entity_type!r}"
            )
        entity_id = text(field(entity, "id"), "id")
        prefix = f"urn:ngsi-ld:{self.entity_type}:"
        if not entity_id.startswith(prefix):
            raise PayloadError(Reason.BAD_SCHEMA, f"id {show(entity_id)} must be {prefix}{{device_id}}")
        device_id = entity_id[len(prefix) :]
        values: dict[str, float] = {}
        time, part = self.handler(entity, values)
        if not values:
            raise PayloadError(Reason.EMPTY, f"{self.entity_type} has no supported attribute")
        return [Measurement(time, device_id, metric, value, part) for metric, value in values.items()]


ENTITY_DECODERS: dict[str, EntityDecoder] = {
    decoder.entity_type: decoder
    for decoder in (
        EntityDecoder("TrafficFlowObserved", "traffic", _traffic_flow),
        EntityDecoder("FloodMonitoring", "flood", _flood_monitoring),
        EntityDecoder("WaterObserved", "flood", _water_observed),
        EntityDecoder("CrowdFlowObserved", "camera", _crowd_flow),
        EntityDecoder("AirQualityObserved", "air", _air_quality),
    )
}


def decoder_for(match: re.Match[str]) -> EntityDecoder | None:
    """The decoder of the topic's entity type, or None when the type is not supported."""
    return ENTITY_DECODERS.get(match["entity_type"])


def decode(route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
    """Decode an entity of any supported type (routes normally hold the topic's type's own decoder)."""
    entity = mapping(load_json(payload, limits), "entity")
    entity_type = text(field(entity, "type"), "type")
    decoder = ENTITY_DECODERS.get(entity_type)
    if decoder is None:
        raise PayloadError(Reason.BAD_SCHEMA, f"type {show(entity_type)} is not one of {', '.join(ENTITY_DECODERS)}")
    return decoder.measurements(entity)

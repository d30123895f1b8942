"""FIWARE Smart Data Model entities (NGSI-LD): one attribute builder per entity type a simulated device sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ioc.fleet import DeviceSpec
from ioc.thresholds import DEFAULT_DANGER_CM, DEFAULT_FREE_FLOW_KMH, DEFAULT_WARNING_CM
from simulators.reports import Reading, dumps, iso_z

NGSI_LD_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"


def fiware(device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """A FIWARE Smart Data Model entity (NGSI-LD, normalized unless ``metadata.fiware_form`` is keyValues)."""
    entity_type = str(device.metadata["fiware_type"])
    attrs = FIWARE_ATTRIBUTES[entity_type](device, reading)
    normalized = device.metadata.get("fiware_form", "normalized") != "keyValues"
    location = {"type": "Point", "coordinates": [device.lon, device.lat]}
    doc: dict[str, Any] = {"id": f"urn:ngsi-ld:{entity_type}:{device.device_id}", "type": entity_type}
    if normalized:
        doc.update({k: {"type": "Property", "value": v} for k, v in attrs.items()})
        doc["location"] = {"type": "GeoProperty", "value": location}
    else:
        doc.update(attrs)
        doc["location"] = location
    doc["@context"] = NGSI_LD_CONTEXT
    return f"fiware/{entity_type}/{device.device_id}", dumps(doc)


def air_quality_observed(device: DeviceSpec, reading: Reading) -> dict[str, Any]:
    """An AirQualityObserved entity: pollutants in ug/m3, temperature, relative humidity as a ratio."""
    m = reading.metrics
    attrs: dict[str, Any] = {"dateObserved": iso_z(reading.ts), "typeofLocation": "outdoor"}
    for metric, value in m.items():
        if metric.endswith("_ugm3"):
            attrs[metric.removesuffix("_ugm3")] = value
    if "temperature_c" in m:
        attrs["temperature"] = m["temperature_c"]
    if "humidity_pct" in m:
        attrs["relativeHumidity"] = round(m["humidity_pct"] / 100, 3)
    return attrs


def traffic_flow_observed(device: DeviceSpec, reading: Reading) -> dict[str, Any]:
    """A TrafficFlowObserved entity: the interval's count, mean speed, occupancy as a ratio, congestion."""
    m = reading.metrics
    start = datetime.fromtimestamp(reading.ts.timestamp() - m["interval_s"], UTC)
    return {
        "dateObserved": iso_z(reading.ts),
        "dateObservedFrom": iso_z(start),
        "dateObservedTo": iso_z(reading.ts),
        "intensity": int(m["vehicle_count"]),
        "averageVehicleSpeed": m["avg_speed_kmh"],
        "occupancy": round(m["occupancy_pct"] / 100, 3),
        "congested": m["avg_speed_kmh"] < 0.4 * float(device.metadata.get("free_flow_kmh", DEFAULT_FREE_FLOW_KMH)),
        "laneDirection": "forward",
        "refRoadSegment": str(device.metadata.get("corridor", device.name)),
        "vehicleType": "motorcycle",
    }


def flood_monitoring(device: DeviceSpec, reading: Reading) -> dict[str, Any]:
    """A FloodMonitoring entity: the level in metres against the warning and danger lines."""
    level_m = round(reading.metrics["water_level_cm"] / 100, 4)
    reference_m = 2.0
    warning = float(device.metadata.get("warning_cm", DEFAULT_WARNING_CM)) / 100
    danger = float(device.metadata.get("danger_cm", DEFAULT_DANGER_CM)) / 100
    status = "flood" if level_m >= danger else "warning" if level_m >= warning else "normal"
    return {
        "observationDateTime": iso_z(reading.ts),
        "currentLevel": level_m,
        "referenceLevel": reference_m,
        "measuredDistance": round(reference_m - level_m, 4),
        "alertLevel": warning,
        "dangerLevel": danger,
        "floodLevelStatus": status,
        "stationID": device.device_id,
        "unitCode": "MTR",
    }


def water_observed(device: DeviceSpec, reading: Reading) -> dict[str, Any]:
    """A WaterObserved entity: the water level in metres."""
    return {
        "dateObserved": iso_z(reading.ts),
        "waterLevel": round(reading.metrics["water_level_cm"] / 100, 4),
        "refDevice": f"urn:ngsi-ld:Device:{device.device_id}",
    }


def crowd_flow_observed(device: DeviceSpec, reading: Reading) -> dict[str, Any]:
    """A CrowdFlowObserved entity: people counted, occupancy and congestion."""
    people = int(reading.metrics["people_count"])
    return {
        "dateObserved": iso_z(reading.ts),
        "peopleCount": people,
        "occupancy": round(min(1.0, people / 400), 3),
        "congested": people > 300,
    }


FIWARE_ATTRIBUTES: dict[str, Callable[[DeviceSpec, Reading], dict[str, Any]]] = {
    "TrafficFlowObserved": traffic_flow_observed,
    "FloodMonitoring": flood_monitoring,
    "WaterObserved": water_observed,
    "CrowdFlowObserved": crowd_flow_observed,
    "AirQualityObserved": air_quality_observed,
}

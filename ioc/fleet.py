"""Fleet files: the zones and devices of a deployment, parsed from YAML, CSV or GeoJSON and validated."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ioc.errors import ConfigError
from ioc.kinds import KindSpec, load_kinds
from ioc.topics import DEVICE_ID_RE, TOPIC_FORMS

# A device's payload format: every topic form of the contract, and SenML (canonical topics, SenML packs).
FORMATS = ("canonical", "senml", *(form for form in TOPIC_FORMS if form != "canonical"))
DEVICE_COLUMNS = ("device_id", "kind", "format", "name", "zone", "lat", "lon", "interval_s", "vendor")
ZONE_ID_RE = DEVICE_ID_RE


@dataclass(frozen=True)
class ZoneSpec:
    """A configurable grouping of devices (a former district, a pilot area, a ward cluster)."""

    zone_id: str
    name: str
    lat: float
    lon: float
    priority: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceSpec:
    """One field device: identity, kind, payload format, place and reporting interval."""

    device_id: str
    kind: str
    format: str
    name: str
    zone: str
    lat: float
    lon: float
    interval_s: int
    vendor: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fleet:
    """Zones and devices of one fleet file, with the kinds it was checked against (what simulators model)."""

    zones: tuple[ZoneSpec, ...]
    devices: tuple[DeviceSpec, ...]
    kinds: dict[str, KindSpec] = field(default_factory=dict)

    def device(self, device_id: str) -> DeviceSpec:
        """The device with ``device_id`` (KeyError when absent)."""
        for spec in self.devices:
            if spec.device_id == device_id:
                return spec
        raise KeyError(device_id)


def load_fleet(path: str | Path, kinds: Mapping[str, KindSpec] | None = None) -> Fleet:
    """Read and validate a fleet from ``.yaml``/``.yml``, ``.csv`` or ``.geojson``/``.json``."""
    path = Path(path)
    known = dict(kinds) if kinds is not None else load_kinds()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"fleet file {path} cannot be read: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        zones, rows = _yaml_rows(text, path)
    elif suffix == ".csv":
        zones, rows = (), _csv_rows(text)
    elif suffix in {".geojson", ".json"}:
        zones, rows = (), _geojson_rows(text, path)
    else:
        raise ConfigError(f"fleet file {path}: unknown extension {suffix!r}; use .yaml, .csv or .geojson")
    devices = _devices(rows, path, known, {z.zone_id for z in zones})
    return Fleet(zones=zones, devices=devices, kinds=known)


def _fail(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}")


def _yaml_rows(text: str, path: Path) -> tuple[tuple[ZoneSpec, ...], list[tuple[str, dict[str, Any]]]]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'devices:' list (and optionally 'zones:')")
    zones = _zones(doc.get("zones") or [], path)
    rows = []
    for index, item in enumerate(doc["devices"], start=1):
        if not isinstance(item, dict):
            raise _fail(path, f"device #{index}", "each entry of 'devices' must be a mapping")
        rows.append((f"device #{index}", dict(item)))
    return zones, rows


def _zones(items: Any, path: Path) -> tuple[ZoneSpec, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{path}: 'zones' must be a list")
    zones: list[ZoneSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        where = f"zone #{index}"
        if not isinstance(item, dict):
            raise _fail(path, where, "each entry of 'zones' must be a mapping")
        body = dict(item)
        zone_id = str(body.pop("zone_id", "") or "")
        where = f"zone #{index} ({zone_id or '?'})"
        if not ZONE_ID_RE.match(zone_id):
            raise _fail(path, where, f"field zone_id {zone_id!r} must match [A-Za-z0-9_-]{{1,64}}")
        if zone_id in seen:
            raise _fail(path, where, f"field zone_id {zone_id!r} is duplicated")
        seen.add(zone_id)
        name = str(body.pop("name", "") or "").strip()
        if not name:
            raise _fail(path, where, "field name is missing")
        lat = _coordinate(body.pop("lat", None), -90, 90, path, where, "lat")
        lon = _coordinate(body.pop("lon", None), -180, 180, path, where, "lon")
        priority = body.pop("priority", False)
        if not isinstance(priority, bool):
            raise _fail(path, where, f"field priority must be true or false (got {priority!r})")
        metadata = _metadata(body, path, where)
        zones.append(ZoneSpec(zone_id, name, lat, lon, priority, metadata))
    return tuple(zones)


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    rows = []
    for line, row in enumerate(reader, start=2):
        body: dict[str, Any] = {}
        for key, value in row.items():
            if key is None or value is None or value == "":
                continue
            key = key.strip()
            body[key] = value.strip() if key in DEVICE_COLUMNS else _scalar(value.strip())
        rows.append((f"row {line}", body))
    return rows


def _geojson_rows(text: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ConfigError(f"{path}: expected a GeoJSON FeatureCollection with a 'features' list")
    rows = []
    for index, feature in enumerate(doc["features"], start=1):
        where = f"feature #{index}"
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            raise _fail(path, where, "field geometry must be a GeoJSON Point")
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            raise _fail(path, where, "field geometry.coordinates must be [lon, lat]")
        body = dict(feature.get("properties") or {})
        body["lon"], body["lat"] = coords[0], coords[1]
        rows.append((where, body))
    return rows


def _scalar(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    if value.lower() in {"true", "false"}:
        return value.lower() == "true"
    return value


def _coordinate(value: Any, low: float, high: float, path: Path, where: str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(path, where, f"field {name} must be a number (got {value!r})") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise _fail(path, where, f"field {name} {number} is outside {low}..{high}")
    return number


def _metadata(body: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    metadata = body.pop("metadata", None) or {}
    if not isinstance(metadata, dict):
        raise _fail(path, where, "field metadata must be a mapping")
    # Unknown keys travel as metadata so CSV extra columns and YAML extras mean the same thing.
    return {**body, **metadata}


def _devices(
    rows: Iterable[tuple[str, dict[str, Any]]], path: Path, kinds: Mapping[str, KindSpec], zone_ids: set[str]
) -> tuple[DeviceSpec, ...]:
    devices: list[DeviceSpec] = []
    seen: set[str] = set()
    for where_row, body in rows:
        device_id = str(body.pop("device_id", "") or "")
        where = f"{where_row} (device {device_id or '?'})"
        if not DEVICE_ID_RE.match(device_id):
            raise _fail(path, where, f"field device_id {device_id!r} must match [A-Za-z0-9_-]{{1,64}}")
        if device_id in seen:
            raise _fail(path, where, f"field device_id {device_id!r} is duplicated")
        seen.add(device_id)
        kind = str(body.pop("kind", "") or "")
        if kind not in kinds:
            raise _fail(path, where, f"field kind {kind!r} is unknown; known kinds: {', '.join(sorted(kinds))}")
        fmt = str(body.pop("format", "") or "")
        if fmt not in FORMATS:
            raise _fail(path, where, f"field format {fmt!r} must be one of {', '.join(FORMATS)}")
        name = str(body.pop("name", "") or "").strip()
        if not name:
            raise _fail(path, where, "field name is missing")
        zone = str(body.pop("zone", "") or "")
        if not zone:
            raise _fail(path, where, "field zone is missing")
        if zone_ids and zone not in zone_ids:
            raise _fail(path, where, f"field zone {zone!r} is not one of the file's zones")
        lat = _coordinate(body.pop("lat", None), -90, 90, path, where, "lat")
        lon = _coordinate(body.pop("lon", None), -180, 180, path, where, "lon")
        raw_interval = body.pop("interval_s", None)
        interval_s = kinds[kind].interval_s if raw_interval in (None, "") else _interval(raw_interval, path, where)
        vendor = str(body.pop("vendor", "") or "")
        metadata = _metadata(body, path, where)
        devices.append(DeviceSpec(device_id, kind, fmt, name, zone, lat, lon, interval_s, vendor, metadata))
    return tuple(devices)


def _interval(value: Any, path: Path, where: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(path, where, f"field interval_s must be a whole number of seconds (got {value!r})") from None
    if not (number.is_integer() and 1 <= number <= 86400):
        raise _fail(path, where, f"field interval_s {value!r} must be a whole number of seconds in 1..86400")
    return int(number)

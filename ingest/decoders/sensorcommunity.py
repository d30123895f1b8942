"""Sensor.Community (luftdaten, airRohr) JSON on ``vendor/sensorcommunity/{device_id}``.

Example (what the airRohr firmware sends; every value is a string)::

    {"esp8266id": "13463510", "software_version": "NRZ-2020-133",
     "sensordatavalues": [{"value_type": "SDS_P1", "value": "12.80"},
                          {"value_type": "SDS_P2", "value": "7.30"},
                          {"value_type": "BME280_temperature", "value": "31.2"},
                          {"value_type": "BME280_humidity", "value": "78.1"},
                          {"value_type": "samples", "value": "880142"}]}

gives pm10_ugm3=12.8 (P1 is PM10), pm25_ugm3=7.3 (P2 is PM2.5), temperature_c=31.2 and humidity_pct=78.1
at the time the message was received (the firmware sends none). The topic names the device; the payload's
``esp8266id`` must equal the registry's ``hardware_id`` of that device (else ``device_mismatch``).
Value types this table does not map (pressure, P0/PM1, P4, the firmware's diagnostics) are ignored.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.decoders.parsing import Limits, field, kind_of, load_json, mapping, number, show, text
from ioc import topics
from ioc.errors import PayloadError
from ioc.reasons import Reason
from ioc.records import HardwareClaim, Measurement, Record

if TYPE_CHECKING:
    from ingest.decoders import Route

logger = logging.getLogger(__name__)

TOPIC = topics.SENSORCOMMUNITY
FORMAT = TOPIC.format
KIND: str | None = "air"
CHANNEL: str | None = "telemetry"

# Particulate sensors: {prefix}_P1 is PM10 and {prefix}_P2 is PM2.5 (P0 PM1 and P4 PM4 have no metric).
PM_SENSORS = ("SDS", "PMS", "SPS30", "HPM", "NPM", "SEN5X")
# Climate sensors: {prefix}_temperature and {prefix}_humidity; the DHT22 sends them unprefixed.
CLIMATE_SENSORS = ("BME280", "BMP280", "SHT3X", "SHT31", "HTU21D", "DHT22", "SEN5X")
VALUE_TYPES: dict[str, str] = {
    **{f"{p}_P1": "pm10_ugm3" for p in PM_SENSORS},
    **{f"{p}_P2": "pm25_ugm3" for p in PM_SENSORS},
    **{f"{p}_temperature": "temperature_c" for p in CLIMATE_SENSORS},
    **{f"{p}_humidity": "humidity_pct" for p in CLIMATE_SENSORS},
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
}
_DECIMAL = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?\s*\Z")
_NON_FINITE = re.compile(r"^\s*[+-]?(?:nan|inf|infinity)\s*\Z", re.IGNORECASE)


def value_of(raw: Any, name: str) -> float:
    """A reading the firmware sends as a decimal string (a JSON number is accepted too)."""
    if type(raw) is not str:
        return number(raw, name)
    if _NON_FINITE.match(raw):
        raise PayloadError(Reason.NON_FINITE, f"{name} is not finite ({show(raw)})")
    if _DECIMAL.match(raw) is None:
        raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be a decimal number, got {show(raw)}")
    return float(raw)


def _hardware_id(doc: dict[str, Any]) -> str:
    raw = field(doc, "esp8266id")
    if type(raw) is int:
        return str(raw)
    chip = text(raw, "esp8266id").strip()
    if not chip:
        raise PayloadError(Reason.BAD_SCHEMA, "esp8266id is empty")
    return chip


def decode(route: Route, payload: bytes, received_at: datetime, limits: Limits) -> list[Record]:
    """Decode one airRohr report into measurements at ``received_at`` and the board it claims to be."""
    doc = mapping(load_json(payload, limits), "report")
    claim = HardwareClaim(received_at, route.device_id, _hardware_id(doc))
    values = field(doc, "sensordatavalues")
    if type(values) is not list:
        raise PayloadError(Reason.BAD_SCHEMA, f"sensordatavalues must be a list, got {kind_of(values)}")
    found: dict[str, tuple[str, float]] = {}
    for index, item in enumerate(values):
        where = f"sensordatavalues[{index}]"
        entry = mapping(item, where)
        value_type = text(field(entry, "value_type", f"{where}."), f"{where}.value_type")
        metric = VALUE_TYPES.get(value_type)
        if metric is None:
            continue
        value = value_of(field(entry, "value", f"{where}."), value_type)
        if metric in found:
            raise PayloadError(Reason.BAD_SCHEMA, f"{found[metric][0]} and {show(value_type)} both give {metric}")
        found[metric] = (value_type, value)
    if not found:
        raise PayloadError(Reason.EMPTY, "sensordatavalues holds no particulate, temperature or humidity value")
    out: list[Record] = [claim]
    out.extend(Measurement(received_at, route.device_id, metric, value) for metric, (_, value) in found.items())
    return out

"""SenML (RFC 8428) packs on the canonical telemetry channel, with unit conversion to canonical metrics.

Example::

    [{"bn": "urn:dev:ioc:FL-BT-001:", "bt": 1763708400, "n": "water_level", "u": "m", "v": 0.125},
     {"n": "rainfall", "u": "mm/h", "v": 12},
     {"n": "battery", "u": "%", "v": 88}]

gives water_level_cm=12.5, rainfall_mm_h=12.0 and battery_pct=88.0 for FL-BT-001 at 2025-11-21T07:00:00Z.
Which names a pack may use comes from the topic's kind in the kind registry (``ioc/kinds.yaml``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from ingest.decoders.parsing import epoch, number, show, text
from ioc.errors import PayloadError
from ioc.kinds import KindSpec
from ioc.reasons import Reason
from ioc.records import Measurement, Record

logger = logging.getLogger(__name__)

URN_PREFIX = "urn:dev:ioc:"
# RFC 8428 section 4.5.3: a time below 2**28 is relative to now.
_RELATIVE_BELOW = 2**28
_NO_UNIT = ""

# The names come from the kind registry (ioc/kinds.yaml): a metric's canonical name takes its canonical unit
# (or none), its short ``senml`` name takes any unit below that converts to the canonical one.
# Canonical unit -> {accepted SenML unit: factor to the canonical unit}.
CONVERSIONS: dict[str, dict[str, float]] = {
    "cm": {"m": 100.0, "cm": 1.0, "mm": 0.1},
    "mm/h": {"mm/h": 1.0, "m/s": 3_600_000.0},
    "%": {"%": 1.0, "/": 100.0},
    "%RH": {"%RH": 1.0, "%": 1.0, "/": 100.0},
    "count": {"count": 1.0, _NO_UNIT: 1.0},
    "km/h": {"km/h": 1.0, "m/s": 3.6},
    "s": {"s": 1.0, "min": 60.0, "h": 3600.0},
    "ug/m3": {"ug/m3": 1.0, "mg/m3": 1000.0, "kg/m3": 1e9},
    "Cel": {"Cel": 1.0},
}
_BASE_FIELDS = ("bn", "bt", "bu", "bv", "bver")


def _split_name(name: str, device_id: str, where: str) -> tuple[str, str]:
    """(device, metric) of a resolved name: ``urn:dev:ioc:{device}:{metric}`` or a bare metric."""
    if name.startswith(URN_PREFIX):
        device, sep, metric = name[len(URN_PREFIX) :].rpartition(":")
        if not sep or not device:
            raise PayloadError(
                Reason.BAD_SENML, f"{where}: name {show(name)} must be urn:dev:ioc:{{device_id}}:{{metric}}"
            )
        return device, metric
    if ":" in name:
        raise PayloadError(Reason.BAD_SENML, f"{where}: name {show(name)} must be urn:dev:ioc:{{device_id}}:{{metric}}")
    return device_id, name


def _relative(received_at: datetime, offset_s: float, where: str) -> datetime:
    try:
        return received_at + timedelta(seconds=offset_s)
    except OverflowError:
        raise PayloadError(Reason.TIMESTAMP_OUT_OF_WINDOW, f"{where}: time {offset_s!r} is out of range") from None


def _factors(spec: KindSpec, name: str, where: str) -> tuple[str, dict[str, float]]:
    """The canonical metric a SenML name stands for in ``spec`` and the units it accepts, with their factors."""
    metric = spec.metrics.get(name)
    if metric is not None:
        return name, {metric.unit: 1.0, _NO_UNIT: 1.0}
    metric = spec.senml_metric(name)
    if metric is None:
        raise PayloadError(Reason.UNKNOWN_METRIC, f"{where}: SenML name {show(name)} is not a {spec.name} metric")
    return metric.name, CONVERSIONS.get(metric.unit, {metric.unit: 1.0})


def decode_pack(pack: list[Any], device_id: str, received_at: datetime, spec: KindSpec) -> list[Record]:
    """Resolve a SenML pack into measurements of kind ``spec``; ``device_id`` (the topic's) when bn names none."""
    if not pack:
        raise PayloadError(Reason.EMPTY, "SenML pack is empty")
    base_name = ""
    base_time = 0.0
    base_unit = _NO_UNIT
    base_value = 0.0
    out: list[Record] = []
    for index, rec in enumerate(pack):
        where = f"record {index}"
        if type(rec) is not dict:
            raise PayloadError(Reason.BAD_SENML, f"{where} must be an object")
        for key in rec:
            if key.endswith("_"):
                raise PayloadError(Reason.BAD_SENML, f"{where}: must-understand field {show(key)} is not supported")
        if "bn" in rec:
            base_name = text(rec["bn"], f"{where}.bn")
        if "bt" in rec:
            base_time = number(rec["bt"], f"{where}.bt")
        if "bu" in rec:
            base_unit = text(rec["bu"], f"{where}.bu")
        if "bv" in rec:
            base_value = number(rec["bv"], f"{where}.bv")
        if "n" not in rec and "v" not in rec and any(key in rec for key in _BASE_FIELDS):
            continue  # a record carrying only base fields
        name = base_name + text(rec.get("n", ""), f"{where}.n")
        if not name:
            raise PayloadError(Reason.BAD_SENML, f"{where} has no name (bn + n)")
        if "v" not in rec:
            raise PayloadError(Reason.BAD_SENML, f"{where} has no numeric value v (vs, vb and vd are not supported)")
        device, senml_name = _split_name(name, device_id, where)
        metric, factors = _factors(spec, senml_name, where)
        unit = text(rec["u"], f"{where}.u") if "u" in rec else base_unit
        factor = factors.get(unit)
        if factor is None:
            raise PayloadError(Reason.BAD_UNIT, f"{where}: unit {show(unit)} is not accepted for {senml_name}")
        value = (base_value + number(rec["v"], f"{where}.v")) * factor
        when = base_time + (number(rec["t"], f"{where}.t") if "t" in rec else 0.0)
        time = _relative(received_at, when, where) if when < _RELATIVE_BELOW else epoch(when, f"{where} time")
        out.append(Measurement(time, device, metric, value))
    if not out:
        raise PayloadError(Reason.EMPTY, "SenML pack has no values")
    return out

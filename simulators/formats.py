"""Payload encoders: one pure function per wire format, device + reading -> (topic, payload bytes).

Each produces exactly the shapes of docs/devices.md; the ingest's decoders read them back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ioc.fleet import DeviceSpec
from ioc.kinds import load_kinds
from ioc.topics import canonical_topic
from simulators.fiware import fiware
from simulators.models.geo import LOCAL_TZ
from simulators.reports import CameraEvent, Reading, dumps, iso_z

BATTERY_EMPTY_V, BATTERY_FULL_V = 3.3, 4.2
# SenML names and units come from the kind registry (a metric's short ``senml`` name with its canonical unit);
# the simulated gauges send water levels in metres, to exercise the ingest's conversion.
SENML_WIRE_UNITS: dict[str, tuple[str, float]] = {"water_level_cm": ("m", 0.01)}
# Sensor.Community value types by the instrument in a device's metadata (``sensor``, ``climate``).
SC_PM_PREFIX = {"SDS011": "SDS", "PMS7003": "PMS", "SPS30": "SPS30"}
SC_CLIMATE = {"BME280": ("BME280_temperature", "BME280_humidity"), "DHT22": ("temperature", "humidity")}
CAMX_RULES = {
    "traffic.accident": "Accident",
    "traffic.wrong_way": "WrongWay",
    "public_order.crowd": "Crowd",
    "traffic.congestion": "Congestion",
    "flood.observed": "Flooding",
}
EVENT_SEVERITY = {
    "traffic.accident": "high",
    "traffic.wrong_way": "medium",
    "public_order.crowd": "medium",
    "traffic.congestion": "low",
    "flood.observed": "high",
}


def status(device: DeviceSpec, online: bool) -> tuple[str, bytes]:
    """The retained status message (and the last will when ``online`` is False)."""
    return canonical_topic(device.kind, device.device_id, "status"), b"online" if online else b"offline"


def snapshot_topic(device: DeviceSpec) -> str:
    """Where a camera publishes its JPEG stills."""
    return canonical_topic(device.kind, device.device_id, "snapshot")


def senml_wire(kind: str, metric: str) -> tuple[str, str, float]:
    """(SenML name, unit, factor from the canonical unit) of a metric: its short name in the kind registry, else
    its canonical name without a unit (which the ingest reads as the canonical unit)."""
    spec = load_kinds().get(kind)
    known = spec.metrics.get(metric) if spec is not None else None
    if known is None or not known.senml:
        return metric, "", 1.0
    unit, factor = SENML_WIRE_UNITS.get(metric, (known.unit, 1.0))
    return known.senml, unit, factor


def canonical(device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """``ioc/v1/{kind}/{id}/telemetry`` with ts, seq, device_id and metrics."""
    doc = {
        "ts": iso_z(reading.ts),
        "seq": reading.seq,
        "device_id": device.device_id,
        "metrics": reading.metrics,
    }
    return canonical_topic(device.kind, device.device_id, "telemetry"), dumps(doc)


def senml(device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """A SenML pack on the telemetry channel; base name ``urn:dev:ioc:{id}:``, base time in epoch seconds."""
    records: list[dict[str, Any]] = []
    for metric, value in reading.metrics.items():
        name, unit, factor = senml_wire(device.kind, metric)
        record: dict[str, Any] = {"n": name, "u": unit, "v": round(value * factor, 4)}
        if not records:
            record = {
                "bn": f"urn:dev:ioc:{device.device_id}:",
                "bt": round(reading.ts.timestamp(), 3),
                **record,
            }
        records.append(record)
    return canonical_topic(device.kind, device.device_id, "telemetry"), dumps(records)


def legacy_flood(device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """``legacy/flood/{station}``: ``station,epoch_s,level_mm,rain_mm_5min,battery_v``."""
    m = reading.metrics
    level_mm = round(m["water_level_cm"] * 10)
    rain_5min = m["rainfall_mm_h"] / 12
    battery_v = BATTERY_EMPTY_V + m["battery_pct"] / 100 * (BATTERY_FULL_V - BATTERY_EMPTY_V)
    line = f"{device.device_id},{int(reading.ts.timestamp())},{level_mm},{rain_5min:.1f},{battery_v:.2f}"
    return f"legacy/flood/{device.device_id}", line.encode()


def trafficx(device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """``vendor/trafficx/{controller}``: local time, period and per-lane count, speed and occupancy 0..1."""
    lanes = [
        {
            "lane": int(part.split(":", 1)[1]),
            "count": int(v["vehicle_count"]),
            "speed": v["avg_speed_kmh"],
            "occ": round(v["occupancy_pct"] / 100, 3),
        }
        for part, v in sorted(reading.parts.items())
    ]
    doc = {
        "ctrl": device.device_id,
        "time": reading.ts.astimezone(LOCAL_TZ).isoformat(timespec="seconds"),
        "period": int(reading.metrics["interval_s"]),
        "lanes": lanes,
    }
    return f"vendor/trafficx/{device.device_id}", dumps(doc)


def _sc_value_types(device: DeviceSpec) -> dict[str, str]:
    """Canonical metric -> the Sensor.Community value type the device's instruments send it as."""
    pm = SC_PM_PREFIX[str(device.metadata.get("sensor", "SDS011"))]
    temperature, humidity = SC_CLIMATE[str(device.metadata.get("climate", "BME280"))]
    return {"pm10_ugm3": f"{pm}_P1", "pm25_ugm3": f"{pm}_P2", "temperature_c": temperature, "humidity_pct": humidity}


def sensorcommunity(device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """``vendor/sensorcommunity/{id}``: the airRohr firmware's JSON, values as strings with two decimals."""
    types = _sc_value_types(device)
    values = [{"value_type": types[m], "value": f"{v:.2f}"} for m, v in reading.metrics.items() if m in types]
    values.append({"value_type": "samples", "value": str(600_000 + reading.seq % 400_000)})
    values.append({"value_type": "signal", "value": "-71"})
    doc = {
        "esp8266id": str(device.metadata["hardware_id"]),
        "software_version": "NRZ-2020-133",
        "sensordatavalues": values,
    }
    return f"vendor/sensorcommunity/{device.device_id}", dumps(doc)


TELEMETRY_ENCODERS: dict[str, Callable[[DeviceSpec, Reading], tuple[str, bytes]]] = {
    "canonical": canonical,
    "senml": senml,
    "legacy_flood": legacy_flood,
    "trafficx": trafficx,
    "fiware": fiware,
    "sensorcommunity": sensorcommunity,
    # camx cameras report counts on the canonical channel; only their analytics events are vendor-shaped.
    "camx": canonical,
}


def telemetry(device: DeviceSpec, reading: Reading) -> tuple[str, bytes]:
    """Encode a reading in the device's configured format."""
    return TELEMETRY_ENCODERS[device.format](device, reading)


def event(device: DeviceSpec, ev: CameraEvent) -> tuple[str, bytes]:
    """Encode a camera event: camx devices speak camx, every other camera the canonical event channel."""
    if device.format == "camx":
        doc: dict[str, Any] = {
            "Source": device.device_id,
            "UtcTime": iso_z(ev.ts, "seconds"),
            "Rule": CAMX_RULES[ev.type],
            "Confidence": round(ev.confidence * 100),
            "Count": ev.count,
        }
        return f"vendor/camx/{device.device_id}/event", dumps(doc)
    doc = {
        "ts": iso_z(ev.ts),
        "type": ev.type,
        "severity": EVENT_SEVERITY[ev.type],
        "confidence": round(ev.confidence, 2),
        "attrs": {"count": ev.count, **ev.attrs},
    }
    return canonical_topic(device.kind, device.device_id, "event"), dumps(doc)


# -- what the ingest stores -----------------------------------------------------------------------------
# History is written without encoding and decoding each message (simulators/history.py). These functions
# give what the ingest keeps from a run of readings in the device's format, precision included: the inverse
# of the encoders above, on arrays. tests/test_history.py holds them to the ingest's decoders for every
# device of the demo.

Column = tuple[str, str, Any, Any]  # metric, part, values, rows kept (None: every row)


def _round(values: Any, places: int) -> Any:
    """Python's ``round`` (the correctly rounded decimal, as the encoders above send, and as ``f"{v:.2f}"``
    sends) over an array. numpy's ``round`` scales by a power of ten first, so it can differ only where the
    scaled value lies within a hair of a half (1.05, 0.125): those few are rounded one by one."""
    v = np.asarray(values, dtype=np.float64)
    out = np.round(v, places)
    scaled = v * 10.0**places
    near = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    if len(near):
        out[near] = [round(x, places) for x in v[near].tolist()]
    return out


def _wire_ratio(pct: Any) -> Any:
    return _round(pct / 100, 3) * 100.0


def stored_series(
    device: DeviceSpec, us: Any, metrics: dict[str, Any], parts: dict[str, dict[str, Any]]
) -> tuple[Any, list[Column]]:
    """What the ingest stores from readings sent at epoch microseconds ``us`` (an int64 array) in ``device``'s
    format: the stored times and one column per (metric, part)."""
    fmt = device.format
    ms, seconds = us // 1000 * 1000, us // 1_000_000 * 1_000_000
    if fmt in ("canonical", "camx"):
        return ms, [(k, "", np.asarray(v, dtype=np.float64), None) for k, v in metrics.items()]
    if fmt == "senml":
        columns: list[Column] = []
        for metric, value in metrics.items():
            factor = senml_wire(device.kind, metric)[2]
            columns.append((metric, "", _round(value * factor, 4) * (100.0 if factor == 0.01 else 1.0), None))
        return np.rint(us / 1000).astype(np.int64) * 1000, columns
    if fmt == "legacy_flood":
        battery_v = _round(BATTERY_EMPTY_V + metrics["battery_pct"] / 100 * (BATTERY_FULL_V - BATTERY_EMPTY_V), 2)
        battery = (battery_v - BATTERY_EMPTY_V) / (BATTERY_FULL_V - BATTERY_EMPTY_V) * 100.0
        return seconds, [
            ("water_level_cm", "", np.rint(metrics["water_level_cm"] * 10) / 10.0, None),
            ("rainfall_mm_h", "", _round(metrics["rainfall_mm_h"] / 12, 1) * 12.0, None),
            ("battery_pct", "", np.clip(battery, 0.0, 100.0), None),
        ]
    if fmt == "trafficx":
        return seconds, _trafficx_stored(metrics, parts)
    if fmt == "fiware":
        return ms, _fiware_stored(device, us, metrics)
    if fmt == "sensorcommunity":  # no time in the payload: stored when it arrives (taken as when it was sent)
        types = _sc_value_types(device)
        return us, [(k, "", _round(v, 2), None) for k, v in metrics.items() if k in types]
    raise ValueError(f"no stored form for format {fmt!r}")


def _trafficx_stored(m: dict[str, Any], parts: dict[str, dict[str, Any]]) -> list[Column]:
    lanes: list[Column] = []
    total = speed_sum = occ_sum = np.zeros(len(m["interval_s"]))
    for part, v in sorted(parts.items()):
        count = np.trunc(v["vehicle_count"]).astype(np.float64)
        occupancy = _wire_ratio(v["occupancy_pct"])
        lanes.append(("vehicle_count", part, count, None))
        speed_sum = speed_sum + count * v["avg_speed_kmh"]
        lanes.append(("avg_speed_kmh", part, np.asarray(v["avg_speed_kmh"], dtype=np.float64), count > 0))
        lanes.append(("occupancy_pct", part, occupancy, None))
        total = total + count
        occ_sum = occ_sum + occupancy
    counted = total > 0
    totals: list[Column] = [
        ("vehicle_count", "", total, None),
        ("interval_s", "", np.trunc(m["interval_s"]).astype(np.float64), None),
        ("avg_speed_kmh", "", speed_sum / np.where(counted, total, 1.0), counted),
        ("occupancy_pct", "", occ_sum / len(parts), None),
    ]
    return totals + lanes


def _fiware_stored(device: DeviceSpec, us: Any, m: dict[str, Any]) -> list[Column]:
    entity_type = str(device.metadata["fiware_type"])
    if entity_type == "TrafficFlowObserved":
        start = (us - np.rint(m["interval_s"] * 1e6).astype(np.int64)) // 1000 * 1000
        return [
            ("vehicle_count", "", np.trunc(m["vehicle_count"]).astype(np.float64), None),
            ("avg_speed_kmh", "", np.asarray(m["avg_speed_kmh"], dtype=np.float64), None),
            ("occupancy_pct", "", _wire_ratio(m["occupancy_pct"]), None),
            ("interval_s", "", (us // 1000 * 1000 - start) / 1e6, None),
        ]
    if entity_type in ("FloodMonitoring", "WaterObserved"):
        return [("water_level_cm", "", _round(m["water_level_cm"] / 100, 4) * 100.0, None)]
    if entity_type == "CrowdFlowObserved":
        return [("people_count", "", np.trunc(m["people_count"]).astype(np.float64), None)]
    if entity_type == "AirQualityObserved":
        sent = [k for k in m if k.endswith("_ugm3") or k == "temperature_c"]
        out: list[Column] = [(k, "", np.asarray(m[k], dtype=np.float64), None) for k in sent]
        if "humidity_pct" in m:
            out.append(("humidity_pct", "", _wire_ratio(m["humidity_pct"]), None))  # a ratio with 3 decimals
        return out
    raise ValueError(f"no stored form for FIWARE type {entity_type!r}")


def _ms(ts: datetime) -> datetime:
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def stored_event(device: DeviceSpec, ev: CameraEvent) -> tuple[datetime, str, str, float, dict[str, Any]]:
    """What the ingest stores from camera event ``ev``: (time, type, severity, confidence, attrs)."""
    if device.format == "camx":
        when = datetime.fromtimestamp(int(ev.ts.timestamp()), UTC)
        return (
            when,
            ev.type,
            EVENT_SEVERITY[ev.type],
            round(ev.confidence * 100) / 100.0,
            {
                "rule": CAMX_RULES[ev.type],
                "count": ev.count,
            },
        )
    return _ms(ev.ts), ev.type, EVENT_SEVERITY[ev.type], round(ev.confidence, 2), {"count": ev.count, **ev.attrs}

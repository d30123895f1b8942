"""Figures: pure functions from loaded rows to the numbers, levels and bands on the wall (no I/O)."""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from typing import Any

from ioc.thresholds import (
    CONGESTION_RATIOS,
    DEFAULT_DANGER_CM,
    DEFAULT_FREE_FLOW_KMH,
    DEFAULT_WARNING_CM,
    INCIDENT_WINDOW_S,
    MEAN_SPEED_CRITICAL_KMH,
    MEAN_SPEED_WARNING_KMH,
    QUIET_SEVERITY,
)

Row = dict[str, Any]

TOP_N = 10
STATUSES = ("online", "offline", "stale", "unknown")
# Readings from devices in these states are old news: they do not feed live figures.
SILENT = ("offline", "stale")


# ---------------------------------------------------------------- one device


def _meta_number(metadata: Row, key: str, default: float) -> float:
    """A finite number from device metadata (not a boolean or text), else ``default``."""
    value = metadata.get(key)
    if type(value) is float or type(value) is int:  # noqa: E721 (exact types: True is not 1 cm)
        return float(value) if math.isfinite(value) else default
    return default


def flood_level(level_cm: float | None, metadata: Row) -> str | None:
    """``ok`` / ``warning`` / ``danger`` from the device's thresholds (metadata warning_cm, danger_cm)."""
    if level_cm is None:
        return None
    if level_cm >= _meta_number(metadata, "danger_cm", DEFAULT_DANGER_CM):
        return "danger"
    if level_cm >= _meta_number(metadata, "warning_cm", DEFAULT_WARNING_CM):
        return "warning"
    return "ok"


def speed_ratio(speed_kmh: float, free_flow_kmh: float) -> float:
    """Speed as a share of the free-flow speed (1.0 when the free-flow speed is not positive)."""
    return speed_kmh / free_flow_kmh if free_flow_kmh > 0 else 1.0


def congestion_band(ratio: float | None) -> int | None:
    """0 free, 1 slow, 2 heavy, 3 jammed from a speed ratio (CONGESTION_RATIOS)."""
    if ratio is None:
        return None
    return next((band for band, least in enumerate(CONGESTION_RATIOS) if ratio >= least), len(CONGESTION_RATIOS))


def congestion(speed_kmh: float | None, metadata: Row) -> int | None:
    """0 free, 1 slow, 2 heavy, 3 jammed from speed / free-flow speed."""
    if speed_kmh is None:
        return None
    return congestion_band(speed_ratio(speed_kmh, _meta_number(metadata, "free_flow_kmh", DEFAULT_FREE_FLOW_KMH)))


def mean_speed_level(speed_kmh: float | None) -> str | None:
    """``critical`` / ``warning`` / ``ok`` for the mean speed of a city or zone (None without one)."""
    if speed_kmh is None:
        return None
    if speed_kmh < MEAN_SPEED_CRITICAL_KMH:
        return "critical"
    return "warning" if speed_kmh < MEAN_SPEED_WARNING_KMH else "ok"


def device_thresholds(kind: str, metadata: Row) -> Row:
    """The thresholds a device's readings are judged by: its metadata's, else the defaults."""
    if kind == "flood":
        return {
            "warning_cm": _meta_number(metadata, "warning_cm", DEFAULT_WARNING_CM),
            "danger_cm": _meta_number(metadata, "danger_cm", DEFAULT_DANGER_CM),
        }
    if kind == "traffic":
        return {"free_flow_kmh": _meta_number(metadata, "free_flow_kmh", DEFAULT_FREE_FLOW_KMH)}
    return {}


def thresholds_meta() -> Row:
    """The defaults and bands behind every level and band the server sends (``meta.thresholds``)."""
    return {
        "flood": {"warning_cm": DEFAULT_WARNING_CM, "danger_cm": DEFAULT_DANGER_CM},
        "traffic": {
            "free_flow_kmh": DEFAULT_FREE_FLOW_KMH,
            "congestion_ratios": list(CONGESTION_RATIOS),
            "mean_speed_critical_kmh": MEAN_SPEED_CRITICAL_KMH,
            "mean_speed_warning_kmh": MEAN_SPEED_WARNING_KMH,
        },
        "cameras": {"incident_window_s": INCIDENT_WINDOW_S, "quiet_severity": QUIET_SEVERITY},
    }


def _value(device: Row, metric: str) -> float | None:
    entry = device["latest"].get(metric)
    return entry["value"] if entry else None


def with_bands(device: Row, metadata: Row) -> Row:
    """Set the device's flood level or congestion band from its latest values; returns it."""
    if device["kind"] == "flood":
        device["level"] = flood_level(_value(device, "water_level_cm"), metadata)
    elif device["kind"] == "traffic":
        device["congestion"] = congestion(_value(device, "avg_speed_kmh"), metadata)
    return device



def yesterday(rows: list[Row], incidents: dict[str | None, int]) -> Row:
    """The summary's headline figures at the same time yesterday, from ``queries.yesterday_rows``."""
    levels: list[float] = []
    speeds: list[float] = []
    flow = 0.0
    warning = 0
    intervals = {r["device_id"]: r["avg"] for r in rows if r["metric"] == "interval_s"}
    for r in rows:
        meta = r["metadata"] if isinstance(r["metadata"], dict) else {}
        if r["metric"] == "water_level_cm" and r["max"] is not None:
            levels.append(r["max"])
            if flood_level(r["max"], meta) in ("warning", "danger"):
                warning += 1
        elif r["metric"] == "avg_speed_kmh" and r["avg"] is not None:
            speeds.append(r["avg"])
        elif r["metric"] == "vehicle_count" and r["avg"] is not None:
            interval = intervals.get(r["device_id"]) or r["interval_s"] or 60
            flow += r["avg"] * 3600.0 / interval
    return {
        "max_level_cm": _round(max(levels)) if levels else None,
        "mean_speed_kmh": _round(sum(speeds) / len(speeds)) if speeds else None,
        "flow_veh_h": round(flow) if rows else None,
        "incidents_1h": sum(incidents.values()),
        "points_warning": warning,
    }


# ---------------------------------------------------------------- the city, a zone


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _status_counts(devices: list[Row]) -> Row:
    counts = dict.fromkeys(STATUSES, 0)
    for d in devices:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    return {"total": len(devices), **counts}


def _live(devices: list[Row], kind: str) -> list[Row]:
    return [d for d in devices if d["kind"] == kind and d["status"] not in SILENT]


def _level_rows(live: list[Row]) -> list[tuple[float, str, Row]]:
    """(water level, device id, device) of the live flood devices that report a level."""
    out = []
    for d in live:
        entry = d["latest"].get("water_level_cm")
        if entry and entry["value"] is not None:
            out.append((entry["value"], d["device_id"], d))
    return out


def flood_view(devices: list[Row]) -> Row:
    """Flood headline figures and the 10 highest water levels.

    The summary computes this for the whole fleet several times a second: the top rows are built
    for the 10 shown only.
    """
    live = _live(devices, "flood")
    levels = _level_rows(live)
    rains = [v for d in live if (v := _value(d, "rainfall_mm_h")) is not None]
    # Highest level first, ties by device id (levels are compared as shown, to 0.1 cm).
    top = heapq.nsmallest(TOP_N, levels, key=lambda t: (-round(t[0], 1), t[1]))
    rows = [
        {
            "device_id": d["device_id"],
            "name": d["name"],
            "zone": d["zone"],
            "level_cm": _round(level),
            "level": d["level"],
            **d["thresholds"],
            "rain_mm_h": _round(_value(d, "rainfall_mm_h")),
        }
        for level, _, d in top
    ]
    return {
        "max_level_cm": rows[0]["level_cm"] if rows else None,
        "max_device_id": rows[0]["device_id"] if rows else None,
        "points_warning": sum(1 for d in live if d["level"] in ("warning", "danger")),
        "points_danger": sum(1 for d in live if d["level"] == "danger"),
        "avg_rain_mm_h": _round(sum(rains) / len(rains)) if rains else None,
        "top": rows,
    }


def _flow_and_speeds(live: list[Row]) -> tuple[float | None, list[float]]:
    """Total flow (vehicles/h, None when no detector counts) and the reported speeds of ``live``."""
    speeds: list[float] = []
    flow = 0.0
    flowing = False
    for d in live:
        count = _value(d, "vehicle_count")
        if count is not None:
            interval = _value(d, "interval_s") or d["interval_s"] or 60
            flow += count * 3600.0 / interval
            flowing = True
        speed = _value(d, "avg_speed_kmh")
        if speed is not None:
            speeds.append(speed)
    return (flow if flowing else None), speeds


def traffic_view(devices: list[Row]) -> Row:
    """Traffic headline figures and the 10 most congested detectors."""
    live = _live(devices, "traffic")
    flow, speeds = _flow_and_speeds(live)
    worst = heapq.nsmallest(TOP_N, _speed_ratios(live), key=lambda w: (w[0], w[1]))
    mean_speed = _round(sum(speeds) / len(speeds)) if speeds else None
    return {
        "mean_speed_kmh": mean_speed,
        "mean_speed_level": mean_speed_level(mean_speed),
        "flow_veh_h": round(flow) if flow is not None else None,
        "congested": sum(1 for d in live if (d["congestion"] or 0) >= 2),
        "worst": [
            {
                "device_id": d["device_id"],
                "name": d["name"],
                "zone": d["zone"],
                "speed_kmh": _round(speed),
                "free_flow_kmh": d["thresholds"]["free_flow_kmh"],
                "speed_ratio": round(ratio, 3),
                "congestion": d["congestion"],
            }
            for ratio, _, speed, d in worst
        ],
    }


def _speed_ratios(live: list[Row]) -> list[tuple[float, str, float, Row]]:
    """(speed ratio, device id, speed, device) of the live traffic devices that report a speed."""
    out = []
    for d in live:
        speed = _value(d, "avg_speed_kmh")
        if speed is not None:
            out.append((speed_ratio(speed, d["thresholds"]["free_flow_kmh"]), d["device_id"], speed, d))
    return out


def alert_counts(alerts: list[Row]) -> Row:
    """Open (active), critical and unacknowledged alert counts."""
    active = [a for a in alerts if a["state"] != "resolved"]
    return {
        "open": len(active),
        "critical": sum(1 for a in active if a["severity"] == "critical"),
        "unacknowledged": sum(1 for a in active if a["state"] == "open"),
    }


def zone_state(devices: list[Row], alerts: list[Row]) -> str:
    """critical (critical alert or danger level), warning (any alert, warning level, jam) or ok."""
    active = [a for a in alerts if a["state"] != "resolved"]
    if any(a["severity"] == "critical" for a in active) or any(
        d["level"] == "danger" for d in devices if d["status"] not in SILENT
    ):
        return "critical"
    if active or any(d["level"] == "warning" or d["congestion"] == 3 for d in devices if d["status"] not in SILENT):
        return "warning"
    return "ok"


def zone_entry(zone: Row, devices: list[Row], alerts: list[Row], incidents: int) -> Row:
    """One zone's line in the summary."""
    levels = _level_rows(_live(devices, "flood"))
    traffic = _live(devices, "traffic")
    _, speeds = _flow_and_speeds(traffic)
    ratios = [r for r, _, _, _ in _speed_ratios(traffic)]
    return {
        "zone_id": zone["zone_id"],
        "name": zone["name"],
        "priority": zone["priority"],
        "state": zone_state(devices, alerts),
        "flood_max_cm": _round(max(level for level, _, _ in levels)) if levels else None,
        "speed_kmh": _round(sum(speeds) / len(speeds)) if speeds else None,
        "congestion": congestion_band(sum(ratios) / len(ratios)) if ratios else None,
        "incidents_1h": incidents,
        "open_alerts": sum(1 for a in alerts if a["state"] != "resolved"),
    }


def summary_view(
    zones: list[Row], devices: list[Row], alerts: list[Row], incidents: dict[str | None, int], yesterday: Row
) -> Row:
    """The ``summary`` channel: the whole city on one screen."""
    by_kind: dict[str, list[Row]] = defaultdict(list)
    by_zone: dict[str | None, list[Row]] = defaultdict(list)
    for d in devices:
        by_kind[d["kind"]].append(d)
        by_zone[d["zone"]].append(d)
    alerts_by_zone: dict[str | None, list[Row]] = defaultdict(list)
    for a in alerts:
        alerts_by_zone[a["zone"]].append(a)
    return {
        "devices": {
            **_status_counts(devices),
            "by_kind": {k: _status_counts(v) for k, v in sorted(by_kind.items())},
        },
        "flood": flood_view(devices),
        "traffic": traffic_view(devices),
        "cameras": {"incidents_1h": sum(incidents.values())},
        "alerts": alert_counts(alerts),
        "zones": [
            zone_entry(
                z,
                by_zone.get(z["zone_id"], []),
                alerts_by_zone.get(z["zone_id"], []),
                incidents.get(z["zone_id"], 0),
            )
            for z in zones
        ],
        "yesterday": yesterday,
    }


def zone_view(zone: Row, devices: list[Row], alerts: list[Row], incidents: int) -> Row:
    """The ``zone:{id}`` channel: one zone's devices, figures and active alerts."""
    return {
        "zone": zone,
        "state": zone_state(devices, alerts),
        "devices": devices,
        "flood": flood_view(devices),
        "traffic": traffic_view(devices),
        "cameras": {"incidents_1h": incidents},
        "alerts": [a for a in alerts if a["state"] != "resolved"],
    }


def zone_summary(zone: Row, devices: list[Row], alerts: list[Row], incidents: int) -> Row:
    """A zone for ``GET /zones``: its row plus its summary line and device counts."""
    entry = zone_entry(zone, devices, alerts, incidents)
    entry.pop("zone_id")
    entry.pop("name")
    entry.pop("priority")
    return {**zone, "summary": {**entry, "devices": _status_counts(devices)}}

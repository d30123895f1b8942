"""The simulated city over a stretch of time at once: the live simulation's models on arrays, per device.

`fleet -> City (tide, rain, street water, incidents over the span) -> SERIES[kind](city, device, times)
 -> faults -> formats.stored_series -> ioc.bulkload.History`

The models (simulators/models) are the live simulation's own, called with arrays of times instead of one
time; a device keeps its phase, battery and centrality (devices.device_traits). Noise comes from a numpy
generator seeded by the seed, the device and the span's edge, so a time gets the same values whatever
window asked for it. A kind takes part in history by a ``series`` function in SERIES (see ``Series``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np

from ioc.bulkload import History, to_datetime
from ioc.fleet import DeviceSpec, Fleet
from ioc.kinds import load_kinds
from ioc.thresholds import DEFAULT_FREE_FLOW_KMH
from simulators import formats
from simulators.cameras import CAMERA_RADIUS_KM, WRONG_WAY_PER_HOUR
from simulators.devices import battery_pct, device_traits
from simulators.faults import FaultSpec
from simulators.models import air, generic
from simulators.models.crowd import people
from simulators.models.flood import FloodPoint, step_depth, tide_floor_cm
from simulators.models.geo import distance_km
from simulators.models.rain import RainField
from simulators.models.tide import Tide
from simulators.models.traffic import Flow, Incident, demand, flooding_slowdown, flow, natural_incidents
from simulators.readings import FLOOD_REACH_KM
from simulators.runner import SETTLE_S, STEP_S

Array = Any  # a numpy array of float64 (one value per reading)
# What a kind reports over a run of readings: metrics, and metrics per part (e.g. per lane), one value per time.
Readings = tuple[dict[str, Array], dict[str, dict[str, Array]]]
# (time in epoch seconds, type, confidence, count, attrs) of a camera analytics event
EventAt = tuple[float, str, float, int, dict[str, Any]]
QUARANTINED = frozenset({"malformed", "oversized", "out_of_range", "nan", "unknown_device", "wrong_topic"})


@dataclass
class Device:
    """One device over the span: its spec, fixed traits and noise generator."""

    spec: DeviceSpec
    phase: float
    battery0: float
    centrality: float
    rng: np.random.Generator

    def times(self, start: float, end: float) -> Array:
        """Epoch seconds of its reports in ``[start, end)``, to the millisecond, at its fixed phase."""
        interval = self.spec.interval_s
        first = start + (self.phase - start) % interval
        return np.round(first + interval * np.arange(max(0, math.ceil((end - first) / interval))), 3)


class City:
    """The physical state of the simulated city over ``[start, end)``: what every kind's series reads."""

    def __init__(self, fleet: Fleet, seed: int, start: float, end: float) -> None:
        self.seed = seed
        self.specs = {d.device_id: d for d in fleet.devices}
        self.tide = Tide()
        self.rain = RainField(seed)
        # The street water on the live simulation's STEP_S grid, settled for SETTLE_S before the start.
        self.grid0 = math.floor((start - SETTLE_S) / STEP_S) * STEP_S
        grid = self.grid0 + STEP_S * np.arange(math.ceil((end - self.grid0) / STEP_S) + 1)
        floods = sorted((d for d in fleet.devices if d.kind == "flood"), key=lambda d: d.device_id)
        self.flood_index = {d.device_id: i for i, d in enumerate(floods)}
        points = [FloodPoint.from_device(d.device_id, d.lat, d.lon, d.metadata, seed) for d in floods]
        traits = _Traits(*(np.array([getattr(p, n) for p in points]) for n in _Traits.__dataclass_fields__))
        tide = self.tide.level_m(grid)
        self.rain_mm_h = np.array([self.rain.rate_series(grid, p.lat, p.lon) for p in points]).reshape(
            len(points), len(grid)
        )
        self.depth_cm = np.empty_like(self.rain_mm_h)
        depth = tide_floor_cm(tide[0], traits.ground_m, traits.tide_share)
        for i in range(len(grid)):
            if i:
                depth = step_depth(traits, depth, STEP_S, self.rain_mm_h[:, i], tide[i])
            self.depth_cm[:, i] = depth
        traffic = sorted((d for d in fleet.devices if d.kind == "traffic"), key=lambda d: d.device_id)
        places = [(d.lat, d.lon) for d in traffic]
        slots = range(int(start // 3600) - 2, int(end // 3600) + 1)
        self.incidents: list[Incident] = [i for slot in slots for i in natural_incidents(seed, slot, places)]
        self.near = {d.device_id: _neighbours(d, fleet) for d in fleet.devices}
        self.centrality = {d.device_id: device_traits(seed, d)[3] for d in traffic}
        self.kinds = fleet.kinds or load_kinds()
        self.generic = {name: generic.models(spec) for name, spec in self.kinds.items() if spec.simulate}
        self.burning = {z.zone_id for z in fleet.zones if z.metadata.get("burning_risk")}

    def _at(self, times: Array) -> Array:
        # A reading at t sees the state stepped to the end of its grid step (as the live run does).
        return np.ceil((times - self.grid0) / STEP_S - 1e-9).astype(np.int64)

    def depth(self, device_id: str, times: Array) -> Array:
        """Street water (cm) at a flood point at ``times``."""
        return self.depth_cm[self.flood_index[device_id], self._at(times)]

    def rain_at(self, device_id: str, times: Array) -> Array:
        """Rain rate (mm/h) at a flood point at ``times``."""
        return self.rain_mm_h[self.flood_index[device_id], self._at(times)]

    def slowdown(self, spec: DeviceSpec, times: Array) -> Array:
        """Share of speed lost at a detector to incidents and flooded streets nearby."""
        kept = np.ones_like(times)
        for incident in self.incidents:
            kept *= 1 - incident.slowdown(times, spec.lat, spec.lon)
        for dist, flood_id in self.near[spec.device_id]["flood"]:
            if dist > FLOOD_REACH_KM:
                break
            kept *= 1 - flooding_slowdown(self.depth(flood_id, times), dist)
        return 1 - kept

    def flow(self, device_id: str, times: Array, noise: Array | float) -> Flow:
        """The flow at a traffic detector for the intervals ending at ``times``."""
        spec = self.specs[device_id]
        return flow(
            times,
            int(spec.metadata.get("lanes", 3)),
            _free_flow(spec),
            spec.interval_s,
            self.slowdown(spec, times),
            self.centrality[device_id],
            noise,
        )


@dataclass
class _Traits:
    ground_m: Array
    capacity_mm_h: Array
    gain: Array
    drain_min: Array
    tide_share: Array


def _free_flow(spec: DeviceSpec) -> float:
    return float(spec.metadata.get("free_flow_kmh", DEFAULT_FREE_FLOW_KMH))


def _neighbours(spec: DeviceSpec, fleet: Fleet) -> dict[str, list[tuple[float, str]]]:
    near: dict[str, list[tuple[float, str]]] = {"flood": [], "traffic": []}
    for other in fleet.devices:
        if other.device_id != spec.device_id and other.kind in near:
            near[other.kind].append((distance_km(spec.lat, spec.lon, other.lat, other.lon), other.device_id))
    for items in near.values():
        items.sort()
    return near


# -- what each kind reports -----------------------------------------------------------------------------


def flood_series(city: City, device: Device, times: Array) -> Readings:
    """A flood gauge: street water with sensor noise, the rain it sees, its battery."""
    level = np.maximum(0.0, city.depth(device.spec.device_id, times) + device.rng.normal(0, 0.3, len(times)))
    return {
        "water_level_cm": np.round(level, 1),
        "rainfall_mm_h": np.round(city.rain_at(device.spec.device_id, times), 1),
        "battery_pct": battery_pct(times, device.battery0),
    }, {}


def traffic_series(city: City, device: Device, times: Array) -> Readings:
    """A traffic detector: the flow, split over its lanes as readings.traffic_reading does."""
    spec, rng, n = device.spec, device.rng, len(times)
    total = city.flow(spec.device_id, times, np.maximum(0.7, rng.normal(1, 0.05, n)))
    lanes = max(1, int(spec.metadata.get("lanes", 3)))
    weights = [1.0 + 0.15 * (lanes - i) + rng.uniform(-0.05, 0.05, n) for i in range(lanes)]
    weight_sum = sum(weights)
    parts: dict[str, dict[str, Array]] = {}
    remaining = total.vehicle_count
    for i, w in enumerate(weights, start=1):
        count = remaining if i == lanes else np.minimum(remaining, np.rint(total.vehicle_count * w / weight_sum))
        remaining = remaining - count
        parts[f"lane:{i}"] = {
            "vehicle_count": count,
            "avg_speed_kmh": np.round(
                np.maximum(1.0, total.avg_speed_kmh * (1.08 - 0.05 * i) * rng.uniform(0.95, 1.05, n)), 1
            ),
            "occupancy_pct": np.round(np.minimum(99.0, total.occupancy_pct * rng.uniform(0.9, 1.1, n)), 1),
        }
    counted = sum(p["vehicle_count"] for p in parts.values())
    weighted = sum(p["vehicle_count"] * p["avg_speed_kmh"] for p in parts.values())
    speed = np.where(counted > 0, weighted / np.maximum(counted, 1), total.avg_speed_kmh)
    return {
        "vehicle_count": counted,
        "interval_s": np.full(n, float(spec.interval_s)),
        "avg_speed_kmh": np.round(speed, 1),
        "occupancy_pct": np.round(sum(p["occupancy_pct"] for p in parts.values()) / lanes, 1),
    }, parts


def camera_series(city: City, device: Device, times: Array) -> Readings:
    """A camera: people in view by time of day, and the traffic of the nearest detector."""
    spec, rng, n = device.spec, device.rng, len(times)
    nearest = city.near[spec.device_id]["traffic"][:1]
    vehicles = np.zeros(n)
    if nearest:
        seen = city.flow(nearest[0][1], times, 1.0)
        vehicles = np.maximum(0.0, np.rint(seen.vehicle_count * rng.uniform(0.5, 0.8, n)))
    base = 160.0 if spec.metadata.get("usage") == "SURVEILLANCE" else 25.0
    return {"people_count": people(times, base, rng.normal(1, 0.08, n)), "vehicle_count": vehicles}, {}


def air_series(city: City, device: Device, times: Array) -> Readings:
    """An air sensor: the pollutants and climate it measures (simulators/models/air.py), its battery if any."""
    spec, n = device.spec, len(times)
    site = air.AirSite.from_device(spec, city.burning)
    at = air.sample_time(site, times)  # a stuck sensor repeats the air of its window's start
    nearest = city.near[spec.device_id]["traffic"][:1]
    congestion = city.slowdown(city.specs[nearest[0][1]], at) if nearest else np.zeros(n)
    rain_at = partial(city.rain.rate_series, lat=spec.lat, lon=spec.lon)
    conditions = air.conditions(at, demand(at) * device.centrality, congestion, rain_at)
    smoke = air.burning(at, city.seed, spec.zone) if site.burning_risk else 0.0
    z = {name: device.rng.normal(0.0, 1.0, n) for name in air.NOISE}
    held = air.stuck(site, times)
    if np.any(held):  # one draw per stuck window, as the live sensor repeats one reading
        first = np.maximum.accumulate(np.where(~held | (np.diff(at, prepend=np.nan) != 0), np.arange(n), 0))
        z = {name: draw[first] for name, draw in z.items()}
    values = air.measure(site, at, conditions, smoke, z)
    metrics = {m: np.round(values[m], air.DIGITS[m]) for m in air.measures(spec)}
    if spec.metadata.get("battery"):
        metrics["battery_pct"] = battery_pct(times, device.battery0)
    return metrics, {}


def generic_series(city: City, device: Device, times: Array) -> Readings:
    """A device of a kind simulated from its kinds file's ``simulate`` block (simulators/models/generic.py)."""
    spec, n = device.spec, len(times)
    load = demand(times) * device.centrality
    rain = city.rain.rate_series(times, spec.lat, spec.lon)
    metrics = {
        m.metric.name: np.round(m.level(load, rain, device.rng.normal(0.0, 1.0, n)), m.digits)
        for m in city.generic[spec.kind]
    }
    if "battery_pct" in city.kinds[spec.kind].metrics:
        metrics["battery_pct"] = battery_pct(times, device.battery0)
    return metrics, {}


# A kind takes part in history with a function from the city, a device and its report times (epoch seconds,
# an array) to what it reports then: {metric: values} and {part: {metric: values}}, one value per time, in
# the canonical units of ioc/kinds.yaml, rounded as the device sends them. A kind without one has history
# when its kinds file gives it a ``simulate`` block (generic_series), as the live simulation does.
Series = Callable[[City, Device, Array], Readings]
SERIES: dict[str, Series] = {
    "flood": flood_series,
    "traffic": traffic_series,
    "camera": camera_series,
    "air": air_series,
}


def series_of(city: City, kind: str) -> Series | None:
    """How a kind reports over a span: its own model, else its ``simulate`` block; None without either."""
    return SERIES.get(kind) or (generic_series if kind in city.generic else None)


# -- camera analytics -----------------------------------------------------------------------------------


def onsets(on: Array, off: Array) -> Array:
    """Indexes where a latch fires: ``on`` while released; released again only where ``off`` (hysteresis).

    The array form of devices.latch over a run of steps that starts released."""
    on_at, off_at = np.flatnonzero(on), np.flatnonzero(off)
    fired, pos = [], 0
    while True:
        k = np.searchsorted(on_at, pos)
        if k == len(on_at):
            break
        fired.append(on_at[k])
        m = np.searchsorted(off_at, on_at[k] + 1)
        if m == len(off_at):
            break
        pos = off_at[m] + 1
    return np.array(fired, dtype=np.int64)


def camera_events(city: City, device: Device, times: Array, metrics: dict[str, Array]) -> list[EventAt]:
    """The analytics events of a camera over its report times, as cameras.camera_events."""
    spec, rng, n = device.spec, device.rng, len(times)
    near = city.near[spec.device_id]
    found: list[EventAt] = []
    floods = [f for d, f in near["flood"] if d <= CAMERA_RADIUS_KM["flood"]]
    depth = np.max([city.depth(f, times) for f in floods], axis=0) if floods else np.zeros(n)
    for i in onsets(depth > 20, depth < 10):
        found.append((times[i], "flood.observed", 0.8 + 0.15 * rng.random(), 0, {"depth_cm": round(depth[i])}))
    detectors = [f for d, f in near["traffic"] if d <= CAMERA_RADIUS_KM["traffic"]][:2]
    if detectors:
        ratio = np.array([city.flow(f, times, 1.0).avg_speed_kmh / _free_flow(city.specs[f]) for f in detectors])
        for i in onsets((ratio < 0.35).any(axis=0), (ratio > 0.5).all(axis=0)):
            count = int(metrics["vehicle_count"][i])
            found.append((times[i], "traffic.congestion", 0.7 + 0.25 * rng.random(), count, {}))
    crowd_at = 220 if spec.metadata.get("usage") == "SURVEILLANCE" else 60
    crowd = metrics["people_count"]
    for i in onsets(crowd > crowd_at, crowd < 0.7 * crowd_at):
        found.append((times[i], "public_order.crowd", 0.75 + 0.2 * rng.random(), int(crowd[i]), {}))
    for i in np.flatnonzero(rng.random(n) < WRONG_WAY_PER_HOUR * spec.interval_s / 3600):
        found.append((times[i], "traffic.wrong_way", 0.6 + 0.35 * rng.random(), 1, {}))
    for incident in city.incidents:
        if times[0] <= incident.start < times[-1] + spec.interval_s and (
            distance_km(spec.lat, spec.lon, incident.lat, incident.lon) <= CAMERA_RADIUS_KM["accident"]
        ):
            confidence, count = 0.8 + 0.17 * rng.random(), 2 + int(rng.integers(0, 3))
            found.append((incident.start, "traffic.accident", confidence, count, {}))
    return found


# -- a span ---------------------------------------------------------------------------------------------


@dataclass
class Span:
    """What to simulate: ``[start, end)`` inside the span that begins at ``edge`` (epoch seconds)."""

    edge: float
    start: float
    end: float
    newest: bool = False  # the span that ends the history: it sets latest values and device status
    faults: FaultSpec = field(default_factory=FaultSpec)


def _faults(rng: np.random.Generator, faults: FaultSpec, n: int) -> tuple[Array, Array]:
    """Which reports of a run are stored, and which readings faults lost: a dropped device is silent for 3-8
    reports; a fault the ingest refuses (or a skewed clock, whose reading lands on another of its own
    minutes, where the first to arrive wins) loses one reading; a duplicate loses nothing."""
    kept, lost = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    if not faults.rates:
        return kept, lost
    roll = rng.random(n)
    low = 0.0
    for kind, rate in faults.rates:
        hit = np.flatnonzero((roll >= low) & (roll < low + rate))
        low += rate
        if kind == "drop":
            for i in hit:
                kept[i : i + int(rng.integers(3, 9))] = False
        elif kind in QUARANTINED or kind == "clock_skew":
            lost[hit] = True
    return kept & ~lost, lost


def simulate(fleet: Fleet, seed: int, span: Span) -> tuple[History, int]:
    """The history of ``span`` as the ingest would have stored it, and how many readings faults lost."""
    city = City(fleet, seed, span.edge, span.end)
    history = History()
    lost = 0
    start_us, end_us = round(span.start * 1e6), round(span.end * 1e6)
    for spec in sorted(fleet.devices, key=lambda d: d.device_id):
        series = series_of(city, spec.kind)
        if series is None:
            continue
        _, phase, battery0, centrality = device_traits(seed, spec)
        rng = np.random.default_rng([seed, int(span.edge), *spec.device_id.encode()])
        device = Device(spec, phase, battery0, centrality, rng)
        times = device.times(span.edge, span.end)
        if not len(times):
            continue
        metrics, parts = series(city, device, times)
        kept, faulted = _faults(rng, span.faults, len(times))
        us, columns = formats.stored_series(spec, np.rint(times * 1e6).astype(np.int64), metrics, parts)
        within = (us >= start_us) & (us < end_us)
        inside = kept & within
        lost += int(np.count_nonzero(faulted & within))
        seq = np.arange(1, len(times) + 1) if spec.format in ("canonical", "camx") else None
        for metric, part, values, rows in columns:
            take = inside if rows is None else inside & rows
            history.add((spec.device_id, metric, part), us[take], values[take], None if seq is None else seq[take])
            if span.newest and take.any():
                last = np.flatnonzero(take)[-1]
                history.latest[(spec.device_id, metric, part)] = (to_datetime(us[last]), float(values[last]))
        if spec.kind == "camera":
            for at, kind, confidence, count, attrs in camera_events(city, device, times, metrics):
                if span.start <= at < span.end:
                    event = formats.CameraEvent(to_datetime(round(at * 1e6)), kind, confidence, count, attrs)
                    when, kind, severity, stored_confidence, stored_attrs = formats.stored_event(spec, event)
                    history.events.append((when, spec.device_id, kind, severity, stored_confidence, stored_attrs))
        if span.newest and inside.any():
            history.status[spec.device_id] = (to_datetime(us[np.flatnonzero(inside)[-1]]), "online")
    return history, lost


def span_of(edge: datetime, start: datetime, end: datetime, newest: bool, faults: FaultSpec) -> Span:
    """A Span from datetimes."""
    return Span(edge.timestamp(), start.timestamp(), end.timestamp(), newest, faults)

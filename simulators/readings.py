"""What a simulated device measures at a time: the physics of its kind read at its place, with its noise."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ioc.fleet import DeviceSpec
from ioc.thresholds import DEFAULT_FREE_FLOW_KMH
from simulators.devices import SimDevice, battery_pct
from simulators.models import air
from simulators.models.crowd import people
from simulators.models.traffic import Flow, demand, flooding_slowdown, flow

if TYPE_CHECKING:
    from simulators.runner import Simulation

FLOOD_REACH_KM = 3.0  # a flooded street slows the detectors within this distance

Metrics = dict[str, float]
Parts = dict[str, dict[str, float]]


def measure(sim: Simulation, device: SimDevice, t: float) -> tuple[Metrics, Parts]:
    """The metrics (and metrics per part, e.g. per lane) ``device`` reports at epoch seconds ``t``."""
    spec, rng = device.spec, device.rng
    battery = float(battery_pct(t, device.battery0))
    if spec.kind == "flood":
        point = sim.floods[spec.device_id]
        level = max(0.0, point.depth_cm + rng.gauss(0, 0.3))
        return {
            "water_level_cm": round(level, 1),
            "rainfall_mm_h": round(point.rain_mm_h, 1),
            "battery_pct": battery,
        }, {}
    if spec.kind == "traffic":
        return traffic_reading(sim, device, t)
    if spec.kind == "air":
        return air_reading(sim, device, t, battery), {}
    if spec.kind in sim.generic:
        load, rain = demand(t) * device.centrality, sim.rain.rate_mm_h(t, spec.lat, spec.lon)
        values = {m.metric.name: m.value(load, rain, rng) for m in sim.generic[spec.kind]}
        if "battery_pct" in sim.kinds[spec.kind].metrics:
            values["battery_pct"] = battery
        return values, {}
    return camera_counts(sim, device, t), {}


def camera_counts(sim: Simulation, device: SimDevice, t: float) -> Metrics:
    """A camera's people count and the vehicles it sees (a share of its nearest detector's count)."""
    spec, rng = device.spec, device.rng
    nearest = sim.near[spec.device_id]["traffic"][:1]
    vehicles = 0
    if nearest:
        source = sim.devices[nearest[0][1]]
        seen = source.last_flow or flow_at(sim, source, t, noise=1.0)
        vehicles = max(0, round(seen.vehicle_count * rng.uniform(0.5, 0.8)))
    base = 160.0 if spec.metadata.get("usage") == "SURVEILLANCE" else 25.0
    return {"people_count": int(people(t, base, rng.gauss(1, 0.08))), "vehicle_count": vehicles}


def air_reading(sim: Simulation, device: SimDevice, t: float, battery: float) -> Metrics:
    """An air sensor's reading: traffic, congestion, rain and burning at its place, in its own measures."""
    spec = device.spec
    site = sim.air_sites[spec.device_id]
    t = float(air.sample_time(site, t))
    nearest = sim.near[spec.device_id]["traffic"][:1]
    congestion = slowdown(sim, sim.devices[nearest[0][1]].spec, t) if nearest else 0.0
    rain_at = partial(sim.rain.rate_mm_h, lat=spec.lat, lon=spec.lon)
    conditions = air.conditions(t, demand(t) * device.centrality, congestion, rain_at)
    smoke = air.burning(t, sim.seed, spec.zone) if site.burning_risk else 0.0
    values = air.reading(site, t, conditions, smoke, device.rng)
    metrics = {m: round(values[m], air.DIGITS[m]) for m in air.measures(spec)}
    return metrics | ({"battery_pct": battery} if spec.metadata.get("battery") else {})


def slowdown(sim: Simulation, spec: DeviceSpec, t: float) -> float:
    """The share of speed lost at a detector to incidents and flooded streets nearby."""
    loss = 0.0
    for incident in sim.incidents(t):
        loss = 1 - (1 - loss) * (1 - float(incident.slowdown(t, spec.lat, spec.lon)))
    for dist, flood_id in sim.near[spec.device_id]["flood"]:
        if dist > FLOOD_REACH_KM:
            break
        loss = 1 - (1 - loss) * (1 - float(flooding_slowdown(sim.floods[flood_id].depth_cm, dist)))
    return loss


def flow_at(sim: Simulation, device: SimDevice, t: float, noise: float | None = None) -> Flow:
    """The traffic a detector measures at ``t``; ``noise`` 1.0 for none, else drawn from its generator."""
    spec = device.spec
    if noise is None:
        noise = max(0.7, device.rng.gauss(1, 0.05))
    f = flow(
        t,
        int(spec.metadata.get("lanes", 3)),
        float(spec.metadata.get("free_flow_kmh", DEFAULT_FREE_FLOW_KMH)),
        spec.interval_s,
        slowdown(sim, spec, t),
        device.centrality,
        noise,
    )
    return Flow(
        int(f.vehicle_count), float(f.avg_speed_kmh), float(f.occupancy_pct), float(f.ratio), float(f.slowdown)
    )


def traffic_reading(sim: Simulation, device: SimDevice, t: float) -> tuple[Metrics, Parts]:
    """A detector's reading: its flow split over its lanes, and the totals of the lanes."""
    rng, spec = device.rng, device.spec
    total = flow_at(sim, device, t)
    device.last_flow = total
    lanes = max(1, int(spec.metadata.get("lanes", 3)))
    weights = [1.0 + 0.15 * (lanes - i) + rng.uniform(-0.05, 0.05) for i in range(lanes)]
    weight_sum = sum(weights)
    parts: Parts = {}
    remaining = total.vehicle_count
    for i, w in enumerate(weights, start=1):
        count = remaining if i == lanes else min(remaining, round(total.vehicle_count * w / weight_sum))
        remaining -= count
        parts[f"lane:{i}"] = {
            "vehicle_count": count,
            "avg_speed_kmh": round(max(1.0, total.avg_speed_kmh * (1.08 - 0.05 * i) * rng.uniform(0.95, 1.05)), 1),
            "occupancy_pct": round(min(99.0, total.occupancy_pct * rng.uniform(0.9, 1.1)), 1),
        }
    counted = sum(p["vehicle_count"] for p in parts.values())
    speed = (
        sum(p["vehicle_count"] * p["avg_speed_kmh"] for p in parts.values()) / counted
        if counted
        else total.avg_speed_kmh
    )
    metrics = {
        "vehicle_count": counted,
        "interval_s": spec.interval_s,
        "avg_speed_kmh": round(speed, 1),
        "occupancy_pct": round(sum(p["occupancy_pct"] for p in parts.values()) / lanes, 1),
    }
    return metrics, parts

"""Camera analytics: the events a camera raises from what it watches, with the JPEG still of each."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ioc.thresholds import DEFAULT_FREE_FLOW_KMH
from simulators import formats
from simulators.devices import Message, SimDevice, latch
from simulators.models.geo import distance_km
from simulators.models.traffic import Incident
from simulators.snapshot import render

if TYPE_CHECKING:
    from simulators.runner import Simulation

CAMERA_RADIUS_KM = {"accident": 1.0, "traffic": 1.5, "flood": 1.0}
WRONG_WAY_PER_HOUR = 0.03
# (time, device id, order within the device's messages, message): how a round's messages are sorted
Timed = tuple[float, str, int, Message]


def camera_events(sim: Simulation, device: SimDevice, t: float, metrics: dict[str, float]) -> list[list[Message]]:
    """The events a camera raises at a report: flooding, congestion, a crowd (each latched) and wrong-way drivers."""
    spec, rng = device.spec, device.rng
    found: list[tuple[str, float, int, dict[str, Any]]] = []
    flood_near, traffic_near = sim.seen_by[spec.device_id]
    depth = max((sim.floods[f].depth_cm for f in flood_near), default=0.0)
    if latch(device, "flood", depth > 20, depth < 10):
        found.append(("flood.observed", 0.8 + 0.15 * rng.random(), 0, {"depth_cm": round(depth)}))
    slow = [d for d in traffic_near if d.last_flow and d.last_flow.avg_speed_kmh < 0.35 * _free_flow(d)]
    fast = all(d.last_flow is None or d.last_flow.avg_speed_kmh > 0.5 * _free_flow(d) for d in traffic_near)
    if latch(device, "congestion", bool(slow), fast):
        found.append(("traffic.congestion", 0.7 + 0.25 * rng.random(), int(metrics["vehicle_count"]), {}))
    crowd_at = 220 if spec.metadata.get("usage") == "SURVEILLANCE" else 60
    people_now = int(metrics["people_count"])
    if latch(device, "crowd", people_now > crowd_at, people_now < 0.7 * crowd_at):
        found.append(("public_order.crowd", 0.75 + 0.2 * rng.random(), people_now, {}))
    if rng.random() < WRONG_WAY_PER_HOUR * spec.interval_s / 3600:
        found.append(("traffic.wrong_way", 0.6 + 0.35 * rng.random(), 1, {}))
    return [event_messages(sim, device, t, kind, conf, count, attrs, depth) for kind, conf, count, attrs in found]


def _free_flow(device: SimDevice) -> float:
    return float(device.spec.metadata.get("free_flow_kmh", DEFAULT_FREE_FLOW_KMH))


def accident_events(sim: Simulation, incident: Incident, t: float) -> list[Timed]:
    """An accident as every online camera within CAMERA_RADIUS_KM of it reports it."""
    out: list[Timed] = []
    for device in sim.devices.values():
        spec = device.spec
        if spec.kind != "camera" or not device.online:
            continue
        if distance_km(spec.lat, spec.lon, incident.lat, incident.lon) <= CAMERA_RADIUS_KM["accident"]:
            confidence, count = 0.8 + 0.17 * device.rng.random(), 2 + device.rng.randint(0, 2)
            messages = event_messages(sim, device, t, "traffic.accident", confidence, count, {}, 0.0)
            out.extend((t, spec.device_id, 100 + i, m) for i, m in enumerate(messages))
    return out


def event_messages(
    sim: Simulation,
    device: SimDevice,
    t: float,
    kind: str,
    confidence: float,
    count: int,
    attrs: dict[str, Any],
    depth: float,
) -> list[Message]:
    """One analytics event as the camera publishes it: the event, then its JPEG still."""
    spec = device.spec
    wall = sim.wall_time(t)
    when = sim.model_datetime(t)
    event = formats.CameraEvent(wall, kind, confidence, count, attrs)
    if not sim.encode:
        return [Message(when, wall, spec.device_id, "", b"", channel="event", event=event)]
    topic, payload = formats.event(spec, event)
    vehicles = device.last_flow.vehicle_count if device.last_flow else 12
    nearest = sim.near[spec.device_id]["traffic"][:1]
    if nearest and (seen := sim.devices[nearest[0][1]].last_flow):
        vehicles = seen.vehicle_count
    # The still has its own generator: drawing it must not change what the camera measures next.
    art = random.Random(f"{sim.seed}:snapshot:{spec.device_id}:{t}")
    jpeg = render(spec.name, wall, max(3, vehicles // 6), depth if depth > 10 else 0.0, kind, art)
    return [
        Message(when, wall, spec.device_id, topic, payload, False, 1, "publish", "event"),
        Message(when, wall, spec.device_id, formats.snapshot_topic(spec), jpeg, False, 1, "publish", "snapshot"),
    ]

"""The simulation: a fleet, seeded models and a model clock turned into the exact messages devices send.

Pure and deterministic: no network, no wall clock. ``Simulation.messages`` yields what a real fleet would
publish over a window of model time; ``simulators.publisher`` puts those messages on a broker."""

from __future__ import annotations

import heapq
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np

from ioc.fleet import DeviceSpec, Fleet
from ioc.kinds import load_kinds
from ioc.thresholds import DEFAULT_FREE_FLOW_KMH
from ioc.topics import canonical_topic
from simulators import faults as faultlib
from simulators import formats
from simulators.faults import FaultSpec
from simulators.models import air, generic
from simulators.models.crowd import people
from simulators.models.flood import FloodPoint
from simulators.models.geo import distance_km
from simulators.models.rain import RainField
from simulators.models.tide import Tide
from simulators.models.traffic import Flow, Incident, demand, flooding_slowdown, flow, natural_incidents
from simulators.scenarios import Plan, local_start, plan
from simulators.snapshot import render

logger = logging.getLogger(__name__)

STEP_S = 30.0
CENTRAL_ZONES = frozenset({"q1", "q3", "q5", "q10", "binhthanh", "phunhuan", "tanbinh"})
CAMERA_RADIUS_KM = {"accident": 1.0, "traffic": 1.5, "flood": 1.0}
# Kinds with a model of their own; any other is simulated from its kinds file's ``simulate`` block (generic.py).
MODELLED_KINDS = frozenset({"flood", "traffic", "camera", "air"})
FLOOD_REACH_KM = 3.0  # a flooded street slows the detectors within this distance
WRONG_WAY_PER_HOUR = 0.03
# Before its start a simulation lets the streets settle for this long (physics only): a drain empties within
# about 45 min, so any two runs agree on the water depth at a time after this, whenever each started.
SETTLE_S = 6 * 3600.0
# Batteries drain 0.3 %/day from a fixed epoch and are swapped at 5 %: a level is a function of the time,
# so history and the live run that follows it agree.
BATTERY_EPOCH = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
BATTERY_DRAIN_PER_DAY = 0.3


def device_traits(seed: int, spec: DeviceSpec) -> tuple[random.Random, float, float, float]:
    """A device's own generator, its reporting phase, its battery level at BATTERY_EPOCH and its centrality.

    A device reports at a fixed phase of the clock, so runs started at any time (and the history) keep its
    cadence."""
    rng = random.Random(f"{seed}:device:{spec.device_id}")
    phase = round(rng.uniform(0, spec.interval_s), 1)
    battery0 = rng.uniform(55, 100)
    centrality = (1.05 if spec.zone in CENTRAL_ZONES else 0.92) * rng.uniform(0.9, 1.05)
    return rng, phase, battery0, centrality


def battery_pct(t: Any, battery0: float) -> Any:
    """Battery level at epoch seconds ``t`` (a number or an array): a drain from a fixed date, swapped at 5 %."""
    used = (100 - battery0 + BATTERY_DRAIN_PER_DAY * (np.asarray(t, dtype=np.float64) - BATTERY_EPOCH) / 86400) % 95
    return np.round(100 - used, 1)[()]


@dataclass(frozen=True)
class Message:
    """One thing a device does on the broker. ``action`` is ``publish``, ``drop`` (vanish; the will fires) or
    ``connect`` (come back); for ``drop`` the topic and payload are those of the will."""

    model_time: datetime
    wall_time: datetime
    device_id: str
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1
    action: str = "publish"
    channel: str = "telemetry"
    # Without encoding (``Simulation(encode=False)``, for comparisons): what the message carries, not its bytes.
    reading: formats.Reading | None = None
    event: formats.CameraEvent | None = None
    fault: str | None = None


@dataclass
class _Device:
    spec: DeviceSpec
    rng: random.Random
    next_at: float
    battery0: float
    seq: int = 0
    online: bool = True
    back_at: float = 0.0
    centrality: float = 1.0
    latched: set[str] = field(default_factory=set)
    last_flow: Flow | None = None


class Simulation:
    """A seeded, deterministic simulation of a fleet; model time runs ``speed`` times faster than the wall."""

    def __init__(
        self,
        fleet: Fleet,
        seed: int = 0,
        speed: float = 1.0,
        start: datetime | None = None,
        scenario: str | None = None,
        faults: FaultSpec | str | float | None = None,
        wall_start: datetime | None = None,
        qos: int = 1,
        encode: bool = True,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.fleet = fleet
        self.seed = seed
        self.speed = speed
        self.scenario = scenario
        self.qos = qos
        self.encode = encode
        self.plan: Plan = plan(scenario, local_start(start), fleet)
        self.start = self.plan.start
        # Payload timestamps are wall-clock publish times: the wall time at which model time ``t`` is due.
        self.wall_start = wall_start or self.start
        if isinstance(faults, float | int):
            faults = str(faults)
        self.faults = faults if isinstance(faults, FaultSpec) else FaultSpec.parse(faults)
        self.tide = Tide(surge_m=self.plan.surge_m)
        self.rain = RainField(seed, list(self.plan.cells), natural=self.plan.natural_rain)
        self.now = self.start.timestamp()
        self._state_t = self.now
        self.fault_log: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self._fault_rng = random.Random(f"{seed}:faults")
        self._incident_slots: dict[int, list[Incident]] = {}
        self._announced: set[Incident] = set()
        self._devices: dict[str, _Device] = {}
        self._floods: dict[str, FloodPoint] = {}
        self._air: dict[str, air.AirSite] = {}
        self._kinds = fleet.kinds or load_kinds()
        self._generic = {name: generic.models(spec) for name, spec in self._kinds.items() if spec.simulate}
        burning = {z.zone_id for z in fleet.zones if z.metadata.get("burning_risk")}
        for spec in sorted(fleet.devices, key=lambda d: d.device_id):
            if spec.kind not in MODELLED_KINDS and spec.kind not in self._generic:
                logger.warning("device %s is not simulated: kind %r has no simulate block", spec.device_id, spec.kind)
                continue
            rng = random.Random(f"{seed}:device:{spec.device_id}")
            # A device reports at a fixed phase of the clock, so runs started at any time keep its cadence.
            phase = round(rng.uniform(0, spec.interval_s), 1)
            rng, phase, battery0, centrality = device_traits(seed, spec)
            first = round(self.now + (phase - self.now) % spec.interval_s, 3)
            device = _Device(spec, rng, first, battery0, centrality=centrality)
            self._devices[spec.device_id] = device
            if spec.kind == "flood":
                self._floods[spec.device_id] = FloodPoint.from_device(
                    spec.device_id, spec.lat, spec.lon, spec.metadata, seed
                )
            elif spec.kind == "air":
                self._air[spec.device_id] = air.AirSite.from_device(spec, burning)
        self._traffic = [d for d in self._devices.values() if d.spec.kind == "traffic"]
        self._by_kind_format: dict[tuple[str, str], list[str]] = {}
        for device in self._devices.values():
            self._by_kind_format.setdefault((device.spec.kind, device.spec.format), []).append(
                device.spec.device_id
            )
        self._near = {d: self._neighbours(self._devices[d].spec) for d in self._devices}
        # What each camera watches: flood points and (up to two) traffic detectors within its radius.
        self._seen_by = {
            d: (
                [f for dist, f in self._near[d]["flood"] if dist <= CAMERA_RADIUS_KM["flood"]],
                [self._devices[f] for dist, f in self._near[d]["traffic"] if dist <= CAMERA_RADIUS_KM["traffic"]][:2],
            )
            for d, device in self._devices.items()
            if device.spec.kind == "camera"
        }
        self._settle()

    def _settle(self) -> None:
        """Run the street water for SETTLE_S before the start, from the tide floor, on the STEP_S grid."""
        t = math.floor((self.now - SETTLE_S) / STEP_S) * STEP_S
        tide = self.tide.level_m(t)
        for point in self._floods.values():
            point.depth_cm = point.tide_floor_cm(tide)
        end = math.floor(self.now / STEP_S) * STEP_S
        while t < end:
            self._step_floods(STEP_S, t + STEP_S)
            t += STEP_S
        self._state_t = end

    # -- clocks ---------------------------------------------------------------------------------------

    def wall_time(self, model_t: float) -> datetime:
        """The wall-clock time at which model time ``model_t`` (epoch seconds) is due."""
        return self.wall_start + timedelta(seconds=(model_t - self.start.timestamp()) / self.speed)

    def model_time(self, wall: datetime) -> datetime:
        """The model time due at wall-clock time ``wall``."""
        return self.start + (wall - self.wall_start) * self.speed

    def _dt(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    # -- state for tests and the wall -----------------------------------------------------------------

    def simulated(self) -> list[DeviceSpec]:
        """The fleet's devices this simulation runs (a kind without any model is left out)."""
        return [d.spec for d in self._devices.values()]

    def flood_depths(self) -> dict[str, float]:
        """Current street water depth (cm) at every flood point."""
        return {k: p.depth_cm for k, p in self._floods.items()}

    def traffic_now(self) -> dict[str, Flow]:
        """The latest flow measured at every traffic detector that has reported."""
        return {d.spec.device_id: d.last_flow for d in self._traffic if d.last_flow is not None}

    # -- what-if runs (simulators.whatif): the same physics, without messages ------------------------------

    def set_depths(self, depths: dict[str, float]) -> None:
        """Start the street water from ``depths`` (cm per flood point, e.g. as observed); others keep theirs."""
        for device_id, depth in depths.items():
            if device_id in self._floods:
                self._floods[device_id].depth_cm = max(0.0, float(depth))

    def run_floods(self, until: float) -> None:
        """Advance the street water alone (no messages) to epoch seconds ``until``, on the STEP_S grid."""
        end = math.floor(until / STEP_S) * STEP_S
        while self._state_t < end:
            self._step_floods(STEP_S, self._state_t + STEP_S)
            self._state_t += STEP_S

    def flows(self, t: float) -> dict[str, Flow]:
        """What every traffic detector measures at ``t`` without noise: demand, incidents, flooded streets."""
        return {d.spec.device_id: self._flow(d, t, noise=1.0) for d in self._traffic}

    def incidents(self, t: float) -> list[Incident]:
        """Incidents that can affect traffic at ``t`` (planted plus natural)."""
        found = [i for i in self.plan.incidents if i.start <= t]
        if self.plan.natural_incidents:
            slot = int(t // 3600)
            for s in (slot - 2, slot - 1, slot):
                found.extend(i for i in self._natural_incidents(s) if i.start <= t)
        return [i for i in found if t <= i.start + i.duration_s + 20 * 60]

    def _natural_incidents(self, slot: int) -> list[Incident]:
        if slot not in self._incident_slots:
            places = [(d.spec.lat, d.spec.lon) for d in self._traffic]
            self._incident_slots[slot] = natural_incidents(self.seed, slot, places)
        return self._incident_slots[slot]

    def _neighbours(self, spec: DeviceSpec) -> dict[str, list[tuple[float, str]]]:
        near: dict[str, list[tuple[float, str]]] = {"flood": [], "traffic": []}
        for other in self._devices.values():
            if other.spec.device_id != spec.device_id and other.spec.kind in near:
                dist = distance_km(spec.lat, spec.lon, other.spec.lat, other.spec.lon)
                near[other.spec.kind].append((dist, other.spec.device_id))
        for items in near.values():
            items.sort()
        return near

    # -- messages -------------------------------------------------------------------------------------

    def connect(self) -> list[Message]:
        """Every device comes online: the retained ``online`` status."""
        self.counts["status"] += len(self._devices)
        return [self._status(d, True, self.now, "publish") for d in self._devices.values()]

    def goodbye(self) -> list[Message]:
        """Every online device says ``offline`` before a clean disconnect."""
        goodbye = [self._status(d, False, self.now, "publish") for d in self._devices.values() if d.online]
        self.counts["status"] += len(goodbye)
        return goodbye

    def messages(self, duration_s: float) -> Iterator[Message]:
        """Connect, then everything published over ``duration_s`` seconds of model time from the start."""
        yield from self.connect()
        yield from self.advance(self.start + timedelta(seconds=duration_s))

    def advance(self, until: datetime) -> Iterator[Message]:
        """Everything published from the current model time up to ``until``, in time order.

        The physical state moves on a fixed grid of ``STEP_S`` whatever the windows asked for, so the
        messages do not depend on how a run is cut into windows."""
        end = until.timestamp()
        while self.now < end:
            grid_end = (math.floor(self.now / STEP_S) + 1) * STEP_S
            if self._state_t < grid_end:
                self._step_floods(grid_end - self._state_t, grid_end)
                self._state_t = grid_end
            emit_until = min(end, grid_end)
            batch: list[tuple[float, str, int, Message]] = []
            # Accidents and reports are handled in time order: both draw on the cameras' generators.
            due: list[tuple[float, str]] = [
                (d.next_at, d.spec.device_id) for d in self._devices.values() if d.next_at <= emit_until
            ]
            starting = {}
            for incident in self.incidents(emit_until):
                if incident.start > self.start.timestamp() and incident not in self._announced:
                    self._announced.add(incident)
                    key = f"~incident-{len(self._announced)}"
                    starting[key] = incident
                    due.append((incident.start, key))
            heapq.heapify(due)
            while due:
                at, device_id = heapq.heappop(due)
                if device_id in starting:
                    batch.extend(self._accident_events(starting[device_id], at))
                    continue
                device = self._devices[device_id]
                device.next_at = round(at + device.spec.interval_s, 3)
                if device.next_at <= emit_until:
                    heapq.heappush(due, (device.next_at, device_id))
                batch.extend(self._report(device, at))
            self.now = emit_until
            batch.sort(key=lambda item: (item[0], item[1], item[2]))
            for _, _, _, message in batch:
                self.counts[message.channel if message.action == "publish" else message.action] += 1
                yield message

    def _step_floods(self, dt: float, t: float) -> None:
        if dt <= 0:
            return
        tide = self.tide.level_m(t)
        for point in self._floods.values():
            point.step(dt, self.rain.rate_mm_h(t, point.lat, point.lon), tide)

    def _status(self, device: _Device, online: bool, t: float, action: str) -> Message:
        topic, payload = formats.status(device.spec, online)
        return Message(
            self._dt(t), self.wall_time(t), device.spec.device_id, topic, payload, True, 1, action, "status"
        )

    def _report(self, device: _Device, t: float) -> list[tuple[float, str, int, Message]]:
        spec = device.spec
        if not device.online:
            if t < device.back_at:
                return []
            device.online = True
            back = [(t, spec.device_id, 0, self._status(device, True, t, "connect"))]
            return back + self._report(device, t)
        device.seq += 1
        metrics, parts = self._measure(device, t)
        reading = formats.Reading(self.wall_time(t), device.seq, metrics, parts)
        out = [self._telemetry(device, reading, t)]
        if spec.kind == "camera":
            out.extend(self._camera_events(device, t, metrics))
        return [(t, spec.device_id, i, m) for i, m in enumerate(m for group in out for m in group)]

    def _measure(self, device: _Device, t: float) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        spec, rng = device.spec, device.rng
        battery = float(battery_pct(t, device.battery0))
        if spec.kind == "flood":
            point = self._floods[spec.device_id]
            level = max(0.0, point.depth_cm + rng.gauss(0, 0.3))
            return {
                "water_level_cm": round(level, 1),
                "rainfall_mm_h": round(point.rain_mm_h, 1),
                "battery_pct": battery,
            }, {}
        if spec.kind == "traffic":
            return self._traffic_reading(device, t)
        if spec.kind == "air":
            return self._air_reading(device, t, battery), {}
        if spec.kind in self._generic:
            load, rain = demand(t) * device.centrality, self.rain.rate_mm_h(t, spec.lat, spec.lon)
            values = {m.metric.name: m.value(load, rain, rng) for m in self._generic[spec.kind]}
            if "battery_pct" in self._kinds[spec.kind].metrics:
                values["battery_pct"] = battery
            return values, {}
        nearest = self._near[spec.device_id]["traffic"][:1]
        vehicles = 0
        if nearest:
            source = self._devices[nearest[0][1]]
            seen = source.last_flow or self._flow(source, t, noise=1.0)
            vehicles = max(0, round(seen.vehicle_count * rng.uniform(0.5, 0.8)))
        base = 160.0 if spec.metadata.get("usage") == "SURVEILLANCE" else 25.0
        return {"people_count": int(people(t, base, rng.gauss(1, 0.08))), "vehicle_count": vehicles}, {}

    def _air_reading(self, device: _Device, t: float, battery: float) -> dict[str, float]:
        spec = device.spec
        site = self._air[spec.device_id]
        t = float(air.sample_time(site, t))
        nearest = self._near[spec.device_id]["traffic"][:1]
        congestion = self._slowdown(self._devices[nearest[0][1]].spec, t) if nearest else 0.0
        rain_at = partial(self.rain.rate_mm_h, lat=spec.lat, lon=spec.lon)
        conditions = air.conditions(t, demand(t) * device.centrality, congestion, rain_at)
        smoke = air.burning(t, self.seed, spec.zone) if site.burning_risk else 0.0
        values = air.reading(site, t, conditions, smoke, device.rng)
        metrics = {m: round(values[m], air.DIGITS[m]) for m in air.measures(spec)}
        return metrics | ({"battery_pct": battery} if spec.metadata.get("battery") else {})

    def _slowdown(self, spec: DeviceSpec, t: float) -> float:
        loss = 0.0
        for incident in self.incidents(t):
            loss = 1 - (1 - loss) * (1 - float(incident.slowdown(t, spec.lat, spec.lon)))
        for dist, flood_id in self._near[spec.device_id]["flood"]:
            if dist > FLOOD_REACH_KM:
                break
            loss = 1 - (1 - loss) * (1 - float(flooding_slowdown(self._floods[flood_id].depth_cm, dist)))
        return loss

    def _flow(self, device: _Device, t: float, noise: float | None = None) -> Flow:
        spec = device.spec
        if noise is None:
            noise = max(0.7, device.rng.gauss(1, 0.05))
        f = flow(
            t,
            int(spec.metadata.get("lanes", 3)),
            float(spec.metadata.get("free_flow_kmh", DEFAULT_FREE_FLOW_KMH)),
            spec.interval_s,
            self._slowdown(spec, t),
            device.centrality,
            noise,
        )
        return Flow(
            int(f.vehicle_count), float(f.avg_speed_kmh), float(f.occupancy_pct), float(f.ratio), float(f.slowdown)
        )

    def _traffic_reading(
        self, device: _Device, t: float
    ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        rng, spec = device.rng, device.spec
        total = self._flow(device, t)
        device.last_flow = total
        lanes = max(1, int(spec.metadata.get("lanes", 3)))
        weights = [1.0 + 0.15 * (lanes - i) + rng.uniform(-0.05, 0.05) for i in range(lanes)]
        weight_sum = sum(weights)
        parts: dict[str, dict[str, float]] = {}
        remaining = total.vehicle_count
        for i, w in enumerate(weights, start=1):
            count = remaining if i == lanes else min(remaining, round(total.vehicle_count * w / weight_sum))
            remaining -= count
            parts[f"lane:{i}"] = {
                "vehicle_count": count,
                "avg_speed_kmh": round(
                    max(1.0, total.avg_speed_kmh * (1.08 - 0.05 * i) * rng.uniform(0.95, 1.05)), 1
                ),
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

    # -- cameras --------------------------------------------------------------------------------------

    def _camera_events(self, device: _Device, t: float, metrics: dict[str, float]) -> list[list[Message]]:
        spec, rng = device.spec, device.rng
        found: list[tuple[str, float, int, dict[str, Any]]] = []
        flood_near, traffic_near = self._seen_by[spec.device_id]
        depth = max((self._floods[f].depth_cm for f in flood_near), default=0.0)
        if self._latch(device, "flood", depth > 20, depth < 10):
            found.append(("flood.observed", 0.8 + 0.15 * rng.random(), 0, {"depth_cm": round(depth)}))
        slow = [
            d
            for d in traffic_near
            if d.last_flow
            and d.last_flow.avg_speed_kmh < 0.35 * float(d.spec.metadata.get("free_flow_kmh", DEFAULT_FREE_FLOW_KMH))
        ]
        fast = all(
            d.last_flow is None
            or d.last_flow.avg_speed_kmh > 0.5 * float(d.spec.metadata.get("free_flow_kmh", DEFAULT_FREE_FLOW_KMH))
            for d in traffic_near
        )
        if self._latch(device, "congestion", bool(slow), fast):
            found.append(("traffic.congestion", 0.7 + 0.25 * rng.random(), int(metrics["vehicle_count"]), {}))
        crowd_at = 220 if spec.metadata.get("usage") == "SURVEILLANCE" else 60
        people_now = int(metrics["people_count"])
        if self._latch(device, "crowd", people_now > crowd_at, people_now < 0.7 * crowd_at):
            found.append(("public_order.crowd", 0.75 + 0.2 * rng.random(), people_now, {}))
        if rng.random() < WRONG_WAY_PER_HOUR * spec.interval_s / 3600:
            found.append(("traffic.wrong_way", 0.6 + 0.35 * rng.random(), 1, {}))
        return [self._event(device, t, kind, conf, count, attrs, depth) for kind, conf, count, attrs in found]

    @staticmethod
    def _latch(device: _Device, name: str, on: bool, off: bool) -> bool:
        """True once when ``on`` becomes true; re-armed only after ``off`` (hysteresis)."""
        if name in device.latched:
            if off:
                device.latched.discard(name)
            return False
        if on:
            device.latched.add(name)
            return True
        return False

    def _accident_events(self, incident: Incident, t: float) -> list[tuple[float, str, int, Message]]:
        out: list[tuple[float, str, int, Message]] = []
        for device in self._devices.values():
            spec = device.spec
            if spec.kind != "camera" or not device.online:
                continue
            if distance_km(spec.lat, spec.lon, incident.lat, incident.lon) <= CAMERA_RADIUS_KM["accident"]:
                messages = self._event(
                    device,
                    t,
                    "traffic.accident",
                    0.8 + 0.17 * device.rng.random(),
                    2 + device.rng.randint(0, 2),
                    {},
                    0.0,
                )
                out.extend((t, spec.device_id, 100 + i, m) for i, m in enumerate(messages))
        return out

    def _event(
        self,
        device: _Device,
        t: float,
        kind: str,
        confidence: float,
        count: int,
        attrs: dict[str, Any],
        depth: float,
    ) -> list[Message]:
        spec = device.spec
        wall = self.wall_time(t)
        event = formats.CameraEvent(wall, kind, confidence, count, attrs)
        if not self.encode:
            return [Message(self._dt(t), wall, spec.device_id, "", b"", channel="event", event=event)]
        topic, payload = formats.event(spec, event)
        vehicles = device.last_flow.vehicle_count if device.last_flow else 12
        nearest = self._near[spec.device_id]["traffic"][:1]
        if nearest and self._devices[nearest[0][1]].last_flow:
            vehicles = self._devices[nearest[0][1]].last_flow.vehicle_count  # type: ignore[union-attr]
        # The still has its own generator: drawing it must not change what the camera measures next.
        art = random.Random(f"{self.seed}:snapshot:{spec.device_id}:{t}")
        jpeg = render(spec.name, wall, max(3, vehicles // 6), depth if depth > 10 else 0.0, kind, art)
        when = self._dt(t)
        return [
            Message(when, wall, spec.device_id, topic, payload, False, 1, "publish", "event"),
            Message(
                when,
                wall,
                spec.device_id,
                formats.snapshot_topic(spec),
                jpeg,
                False,
                1,
                "publish",
                "snapshot",
            ),
        ]

    # -- faults ---------------------------------------------------------------------------------------

    def _telemetry(self, device: _Device, reading: formats.Reading, t: float) -> list[Message]:
        spec = device.spec
        kind = self.faults.pick(self._fault_rng)
        when, wall = self._dt(t), reading.ts

        def msg(topic: str, payload: bytes) -> Message:
            return Message(
                when, wall, spec.device_id, topic, payload, False, self.qos, "publish", "telemetry"
            )

        if kind is None:
            if not self.encode:
                return [Message(when, wall, spec.device_id, "", b"", reading=reading)]
            return [msg(*formats.telemetry(spec, reading))]
        rng = self._fault_rng
        if not self.encode and kind != "drop":
            # History keeps what the store would: the reading (at its skewed time) or, for a fault the
            # ingest quarantines, the fault's name alone.
            if kind == "clock_skew":
                reading = replace(reading, ts=reading.ts + timedelta(seconds=faultlib.skew_s(rng)))
            kept = reading if kind in ("clock_skew", "duplicate") else None
            out = [Message(when, wall, spec.device_id, "", b"", reading=kept, fault=kind)]
            self._log_fault(kind, spec, "", when, wall)
            return out
        if kind == "drop":
            device.online = False
            device.back_at = t + spec.interval_s * rng.randint(3, 8)
            topic, payload = formats.status(spec, False)
            out = [Message(when, wall, spec.device_id, topic, payload, True, 1, "drop", "status")]
        elif kind == "out_of_range":
            metric, value = faultlib.out_of_range(self._kinds[spec.kind])
            parts = {p: {**v, metric: value} if metric in v else v for p, v in reading.parts.items()}
            out = [
                msg(
                    *formats.telemetry(
                        spec, replace(reading, metrics={**reading.metrics, metric: value}, parts=parts)
                    )
                )
            ]
        elif kind == "clock_skew":
            skewed = replace(reading, ts=reading.ts + timedelta(seconds=faultlib.skew_s(rng)))
            out = [msg(*formats.telemetry(spec, skewed))]
        elif kind == "unknown_device":
            ghost = replace(spec, device_id=f"GHOST-{rng.randint(0, 99999):05d}", format="canonical")
            out = [msg(*formats.canonical(ghost, reading))]
        elif kind == "wrong_topic":
            others = [o for o in self._by_kind_format[(spec.kind, spec.format)] if o != spec.device_id]
            other = (
                self._devices[rng.choice(others)].spec
                if others
                else replace(spec, device_id=f"{spec.device_id}-X")
            )
            payload = formats.telemetry(spec, reading)[1]
            out = [msg(formats.telemetry(other, reading)[0], payload)]
        else:
            topic, payload = formats.telemetry(spec, reading)
            if kind == "malformed":
                payload = faultlib.malformed(payload, rng)
            elif kind == "oversized":
                payload = faultlib.oversized(payload)
            elif kind == "nan":
                payload = faultlib.with_nan(payload)
            out = [msg(topic, payload)] * (2 if kind == "duplicate" else 1)
        self._log_fault(kind, spec, out[0].topic, when, wall)
        return out

    def _log_fault(self, kind: str, spec: DeviceSpec, topic: str, when: datetime, wall: datetime) -> None:
        self.fault_log.append(
            {
                "fault": kind,
                "device": spec.device_id,
                "topic": topic,
                "model_time": when.isoformat(),
                "wall_time": wall.isoformat(),
            }
        )
        logger.info("fault=%s device=%s topic=%s", kind, spec.device_id, topic)


def canonical_status_topic(spec: DeviceSpec) -> str:
    """The status topic (and will topic) of a device."""
    return canonical_topic(spec.kind, spec.device_id, "status")

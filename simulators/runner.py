"""The simulation: a fleet, seeded models and a model clock turned into the exact messages devices send.

Pure and deterministic: no network, no wall clock. ``Simulation.messages`` yields what a real fleet would
publish over a window of model time; ``simulators.publisher`` puts those messages on a broker. What a device
measures is ``readings.py``, a camera's events ``cameras.py``, a reading on the wire (faults included)
``telemetry.py``."""

from __future__ import annotations

import heapq
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.fleet import DeviceSpec, Fleet
from ioc.kinds import load_kinds
from simulators import formats
from simulators.cameras import CAMERA_RADIUS_KM, Timed, accident_events, camera_events
from simulators.devices import Message, SimDevice, device_traits
from simulators.faults import FaultSpec
from simulators.models import air, generic
from simulators.models.flood import FloodPoint
from simulators.models.geo import distance_km
from simulators.models.rain import RainField
from simulators.models.tide import Tide
from simulators.models.traffic import Flow, Incident, natural_incidents
from simulators.readings import flow_at, measure
from simulators.scenarios import Plan, local_start, plan
from simulators.telemetry import telemetry

logger = logging.getLogger(__name__)

# simulators.history computes the same city on arrays from these (and imports them from here).
STEP_S = 30.0
# Kinds with a model of their own; any other is simulated from its kinds file's ``simulate`` block (generic.py).
MODELLED_KINDS = frozenset({"flood", "traffic", "camera", "air"})
# Before its start a simulation lets the streets settle for this long (physics only): a drain empties within
# about 45 min, so any two runs agree on the water depth at a time after this, whenever each started.
SETTLE_S = 6 * 3600.0


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
        self.fault_rng = random.Random(f"{seed}:faults")
        self._incident_slots: dict[int, list[Incident]] = {}
        self._announced: set[Incident] = set()
        # The simulated world, read by readings.py, cameras.py and telemetry.py.
        self.kinds = fleet.kinds or load_kinds()
        self.generic = {name: generic.models(spec) for name, spec in self.kinds.items() if spec.simulate}
        self.devices: dict[str, SimDevice] = {}
        self.floods: dict[str, FloodPoint] = {}
        self.air_sites: dict[str, air.AirSite] = {}
        burning = {z.zone_id for z in fleet.zones if z.metadata.get("burning_risk")}
        for spec in sorted(fleet.devices, key=lambda d: d.device_id):
            if spec.kind not in MODELLED_KINDS and spec.kind not in self.generic:
                logger.warning("device %s is not simulated: kind %r has no simulate block", spec.device_id, spec.kind)
                continue
            self._add_device(spec, burning)
        self._map_surroundings()
        self._settle()

    def _map_surroundings(self) -> None:
        """Who is near whom: detectors by place, devices by kind and format, what each camera watches."""
        self.traffic = [d for d in self.devices.values() if d.spec.kind == "traffic"]
        self.by_kind_format: dict[tuple[str, str], list[str]] = {}
        for device in self.devices.values():
            self.by_kind_format.setdefault((device.spec.kind, device.spec.format), []).append(device.spec.device_id)
        self.near = {d: self._neighbours(self.devices[d].spec) for d in self.devices}
        # What each camera watches: flood points and (up to two) traffic detectors within its radius.
        self.seen_by = {
            d: (
                [f for dist, f in self.near[d]["flood"] if dist <= CAMERA_RADIUS_KM["flood"]],
                [self.devices[f] for dist, f in self.near[d]["traffic"] if dist <= CAMERA_RADIUS_KM["traffic"]][:2],
            )
            for d, device in self.devices.items()
            if device.spec.kind == "camera"
        }

    def _add_device(self, spec: DeviceSpec, burning: set[str]) -> None:
        """Add a device to the simulation, with its flood point or air site when it has one."""
        rng, phase, battery0, centrality = device_traits(self.seed, spec)
        first = round(self.now + (phase - self.now) % spec.interval_s, 3)
        self.devices[spec.device_id] = SimDevice(spec, rng, first, battery0, centrality=centrality)
        if spec.kind == "flood":
            self.floods[spec.device_id] = FloodPoint.from_device(
                spec.device_id, spec.lat, spec.lon, spec.metadata, self.seed
            )
        elif spec.kind == "air":
            self.air_sites[spec.device_id] = air.AirSite.from_device(spec, burning)

    def _settle(self) -> None:
        """Run the street water for SETTLE_S before the start, from the tide floor, on the STEP_S grid."""
        t = math.floor((self.now - SETTLE_S) / STEP_S) * STEP_S
        tide = self.tide.level_m(t)
        for point in self.floods.values():
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

    def model_datetime(self, t: float) -> datetime:
        """Model time ``t`` (epoch seconds) as a datetime."""
        return datetime.fromtimestamp(t, UTC)

    # -- state for tests and the wall -----------------------------------------------------------------

    def simulated(self) -> list[DeviceSpec]:
        """The fleet's devices this simulation runs (a kind without any model is left out)."""
        return [d.spec for d in self.devices.values()]

    def flood_depths(self) -> dict[str, float]:
        """Current street water depth (cm) at every flood point."""
        return {k: p.depth_cm for k, p in self.floods.items()}

    def traffic_now(self) -> dict[str, Flow]:
        """The latest flow measured at every traffic detector that has reported."""
        return {d.spec.device_id: d.last_flow for d in self.traffic if d.last_flow is not None}

    # -- what-if runs (simulators.whatif): the same physics, without messages ------------------------------

    def set_depths(self, depths: dict[str, float]) -> None:
        """Start the street water from ``depths`` (cm per flood point, e.g. as observed); others keep theirs."""
        for device_id, depth in depths.items():
            if device_id in self.floods:
                self.floods[device_id].depth_cm = max(0.0, float(depth))

    def run_floods(self, until: float) -> None:
        """Advance the street water alone (no messages) to epoch seconds ``until``, on the STEP_S grid."""
        end = math.floor(until / STEP_S) * STEP_S
        while self._state_t < end:
            self._step_floods(STEP_S, self._state_t + STEP_S)
            self._state_t += STEP_S

    def flows(self, t: float) -> dict[str, Flow]:
        """What every traffic detector measures at ``t`` without noise: demand, incidents, flooded streets."""
        return {d.spec.device_id: flow_at(self, d, t, noise=1.0) for d in self.traffic}

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
            places = [(d.spec.lat, d.spec.lon) for d in self.traffic]
            self._incident_slots[slot] = natural_incidents(self.seed, slot, places)
        return self._incident_slots[slot]

    def _neighbours(self, spec: DeviceSpec) -> dict[str, list[tuple[float, str]]]:
        near: dict[str, list[tuple[float, str]]] = {"flood": [], "traffic": []}
        for other in self.devices.values():
            if other.spec.device_id != spec.device_id and other.spec.kind in near:
                dist = distance_km(spec.lat, spec.lon, other.spec.lat, other.spec.lon)
                near[other.spec.kind].append((dist, other.spec.device_id))
        for items in near.values():
            items.sort()
        return near

    # -- messages -------------------------------------------------------------------------------------

    def connect(self) -> list[Message]:
        """Every device comes online: the retained ``online`` status."""
        self.counts["status"] += len(self.devices)
        return [self._status(d, True, self.now, "publish") for d in self.devices.values()]

    def goodbye(self) -> list[Message]:
        """Every online device says ``offline`` before a clean disconnect."""
        goodbye = [self._status(d, False, self.now, "publish") for d in self.devices.values() if d.online]
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
            batch: list[Timed] = []
            # Accidents and reports are handled in time order: both draw on the cameras' generators.
            due: list[tuple[float, str]] = [
                (d.next_at, d.spec.device_id) for d in self.devices.values() if d.next_at <= emit_until
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
                    batch.extend(accident_events(self, starting[device_id], at))
                    continue
                device = self.devices[device_id]
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
        for point in self.floods.values():
            point.step(dt, self.rain.rate_mm_h(t, point.lat, point.lon), tide)

    def _status(self, device: SimDevice, online: bool, t: float, action: str) -> Message:
        topic, payload = formats.status(device.spec, online)
        return Message(
            self.model_datetime(t), self.wall_time(t), device.spec.device_id, topic, payload, True, 1, action, "status"
        )

    def _report(self, device: SimDevice, t: float) -> list[Timed]:
        spec = device.spec
        if not device.online:
            if t < device.back_at:
                return []
            device.online = True
            back = [(t, spec.device_id, 0, self._status(device, True, t, "connect"))]
            return back + self._report(device, t)
        device.seq += 1
        metrics, parts = measure(self, device, t)
        reading = formats.Reading(self.wall_time(t), device.seq, metrics, parts)
        out = [telemetry(self, device, reading, t)]
        if spec.kind == "camera":
            out.extend(camera_events(self, device, t, metrics))
        return [(t, spec.device_id, i, m) for i, m in enumerate(m for group in out for m in group)]

"""What-if runs for leaders (``/simulate``): the city's physical models run forward under a chosen scenario.

The same models as the simulators (``simulators.models``: tide, street water, traffic), not the forecaster:
a scenario says what the rain and the tide will be, the models say what the streets do. A run starts from
the water observed now (or, for a later start, from streets at the tide's floor), rains uniformly on the
chosen zones, and reports every flood point's depth and every detector's speed every ``step_min``.

The live server runs it in a worker process (``dashboards.simulations``): ``python -m simulators.whatif``
reads one JSON request on stdin and writes one JSON result on stdout, at a lower CPU priority.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.fleet import load_fleet
from simulators.models.geo import LOCAL_TZ
from simulators.models.rain import RainField
from simulators.models.tide import Tide
from simulators.runner import Simulation

logger = logging.getLogger(__name__)

EVENING_HOURS = (15, 22)  # local hours in which a high water counts as "the evening high tide"
LEAD_MIN = 60  # an evening-high run starts this long before the high water


class ScenarioRain(RainField):
    """Rain of ``rate`` mm/h from ``t0`` to ``t1`` over the given points (all when None), nothing else."""

    def __init__(self, rate: float, t0: float, t1: float, where: set[tuple[float, float]] | None) -> None:
        super().__init__(0, natural=False)
        self.rate, self.t0, self.t1, self.where = rate, t0, t1, where

    def rate_mm_h(self, t: float, lat: float, lon: float) -> float:
        """The scenario's rate inside its window and zones, else 0."""
        inside = self.where is None or (lat, lon) in self.where
        return self.rate if inside and self.t0 <= t < self.t1 else 0.0


@dataclasses.dataclass(frozen=True)
class FixedTide(Tide):
    """The river held at one level (a leader's "what if the tide stood at 1.7 m")."""

    fixed_m: float = 1.5

    def level_m(self, t: float) -> float:
        """The fixed level, whatever the time."""
        return self.fixed_m


def evening_high(after: float, tide: Tide) -> float:
    """Epoch seconds of the first high water after ``after`` that falls in the local evening."""
    t = after
    while t < after + 3 * 86400:
        t = tide.next_high(t)
        if EVENING_HOURS[0] <= datetime.fromtimestamp(t, LOCAL_TZ).hour < EVENING_HOURS[1]:
            return t
    raise ValueError("no evening high water within three days")


def run(request: dict[str, Any]) -> dict[str, Any]:
    """One what-if run (see the module docstring for the request and the result)."""
    started = time.monotonic()
    fleet = load_fleet(Path(request["fleet_file"]))
    now = datetime.fromisoformat(request["now"]).timestamp()
    tide_spec = request.get("tide") or {"mode": "today"}
    tide: Tide = Tide()
    if tide_spec["mode"] == "level":
        tide = FixedTide(fixed_m=float(tide_spec["level_m"]))
    start = now
    if tide_spec["mode"] == "evening_high":
        start = evening_high(now, tide) - LEAD_MIN * 60
    start = start // 60 * 60
    sim = Simulation(fleet, int(request.get("seed", 0)), start=datetime.fromtimestamp(start, UTC), encode=False)
    sim.plan = dataclasses.replace(sim.plan, natural_incidents=False)
    sim.tide = tide
    zones = request.get("zones") or None
    floods = [d for d in fleet.devices if d.kind == "flood"]
    where = None if zones is None else {(d.lat, d.lon) for d in floods if d.zone in zones}
    t0 = start + 60 * float(request.get("rain_start_min", 0))
    duration_s = 60 * float(request["duration_min"])
    rate = float(request["rain_mm"]) / (duration_s / 3600) if duration_s > 0 else 0.0
    sim.rain = ScenarioRain(rate, t0, t0 + duration_s, where)
    # From the water observed now; a later start begins from streets at the tide's floor.
    observed = request.get("depths") or {} if start - now < 600 else {}
    sim.set_depths({d.device_id: observed.get(d.device_id, 0.0) for d in floods})
    step_s = 60 * int(request.get("step_min", 10))
    steps = int(float(request["hours"]) * 3600 // step_s)
    times, tide_m, rain_now = [], [], []
    depth: dict[str, list[float]] = {d.device_id: [] for d in floods}
    speed: dict[str, list[float]] = {}
    for i in range(steps + 1):
        t = start + i * step_s
        sim.run_floods(t)
        times.append(datetime.fromtimestamp(t, UTC).isoformat())
        tide_m.append(round(tide.level_m(t), 3))
        rain_now.append(round(rate if t0 <= t < t0 + duration_s else 0.0, 1))
        for device_id, cm in sim.flood_depths().items():
            depth[device_id].append(round(cm, 1))
        for device_id, f in sim.flows(t).items():
            speed.setdefault(device_id, []).append(f.avg_speed_kmh)
    return {
        "start": times[0],
        "rain_from": datetime.fromtimestamp(t0, UTC).isoformat(),
        "rain_mm_h": round(rate, 1),
        "times": times,
        "tide_m": tide_m,
        "rain": rain_now,
        "floods": depth,
        "traffic": speed,
        "seconds": round(time.monotonic() - started, 3),
    }


def main() -> int:
    """Worker entry point: JSON request on stdin, JSON result (or {"error": ...}) on stdout."""
    os.nice(10)  # a what-if must never slow the live wall
    try:
        result = run(json.load(sys.stdin))
    except (KeyError, ValueError, TypeError, OSError) as exc:
        json.dump({"error": f"{type(exc).__name__}: {exc}"}, sys.stdout)
        return 1
    json.dump(result, sys.stdout, separators=(",", ":"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

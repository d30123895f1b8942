"""Traffic at a detector: demand by local time of day and weekday, speed falling with volume, and slow-downs
spreading from incidents and flooded streets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.models.geo import distance_km, local_hours

VEHICLES_PER_LANE_MIN = 45.0


def demand(t: float) -> float:
    """Volume over capacity, about 0.05 at night to about 1 at the weekday peaks (UTC+7)."""
    hour, weekday = local_hours(t)
    weekend = weekday >= 5
    daytime = 1 / (1 + math.exp(-(hour - 6.0) * 2.5)) - 1 / (1 + math.exp(-(hour - 22.5) * 2.0))
    base = 0.05 + (0.42 if weekend else 0.5) * daytime
    morning = math.exp(-(((hour - (8.5 if weekend else 7.5)) / 0.8) ** 2))
    evening = math.exp(-(((hour - 17.5) / 0.85) ** 2))
    peaks = (0.12 if weekend else 0.45) * morning + (0.2 if weekend else 0.5) * evening
    return base + peaks


@dataclass(frozen=True)
class Incident:
    """An accident (or a breakdown) at a place; its queue grows for a while, then clears."""

    lat: float
    lon: float
    start: float
    duration_s: float
    severity: float = 0.85
    label: str = "accident"

    def slowdown(self, t: float, lat: float, lon: float) -> float:
        """Share of speed lost at a point, 0..severity; the affected radius grows with the queue."""
        if t < self.start:
            return 0.0
        elapsed_min = (t - self.start) / 60
        end_min = self.duration_s / 60
        if elapsed_min > end_min + 20:
            return 0.0
        radius_km = min(3.0, 0.3 + 0.08 * min(elapsed_min, end_min))
        fade = 1.0 if elapsed_min <= end_min else 1 - (elapsed_min - end_min) / 20
        return self.severity * fade * math.exp(-distance_km(self.lat, self.lon, lat, lon) / radius_km)


@dataclass(frozen=True)
class Flow:
    """What a detector measures over one interval."""

    vehicle_count: int
    avg_speed_kmh: float
    occupancy_pct: float
    ratio: float
    slowdown: float


def flooding_slowdown(depth_cm: float, distance: float) -> float:
    """Share of speed a flooded street takes from a detector ``distance`` km away."""
    if depth_cm <= 15:
        return 0.0
    return min(0.8, (depth_cm - 15) / 35) * math.exp(-distance / 0.8)


def flow(
    t: float,
    lanes: int,
    free_flow_kmh: float,
    interval_s: int,
    slowdown: float,
    centrality: float,
    noise: float,
) -> Flow:
    """The flow at a detector for the interval ending at ``t``."""
    ratio = max(0.0, demand(t) * centrality * noise)
    slowdown = min(0.9, max(0.0, slowdown))
    speed = free_flow_kmh * max(0.25, 1 - 0.65 * min(ratio, 1.2) ** 2) * (1 - slowdown)
    # A queue lets fewer vehicles past the detector than want to pass.
    served = min(ratio, 1.05) * (1 - 0.55 * slowdown)
    count = round(served * lanes * VEHICLES_PER_LANE_MIN * interval_s / 60)
    occupancy = min(98.0, 100 * (0.03 + 0.35 * min(ratio, 1.2) + 0.55 * (1 - speed / free_flow_kmh)))
    return Flow(count, round(speed, 1), round(occupancy, 1), ratio, slowdown)

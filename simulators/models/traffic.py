"""Traffic at a detector: demand by local time of day and weekday, speed falling with volume, and slow-downs
spreading from incidents and flooded streets.

Every function takes numbers or arrays (of times, depths): the live simulation asks for one reading, the
history (simulators/history.py) for a whole span at once."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.models.geo import distance_km, local_hours

VEHICLES_PER_LANE_MIN = 45.0
INCIDENTS_PER_PEAK_HOUR = 1.2


def demand(t: Any) -> Any:
    """Volume over capacity, about 0.05 at night to about 1 at the weekday peaks (UTC+7)."""
    hour, weekday = local_hours(t)
    weekend = weekday >= 5
    daytime = 1 / (1 + np.exp(-(hour - 6.0) * 2.5)) - 1 / (1 + np.exp(-(hour - 22.5) * 2.0))
    base = 0.05 + np.where(weekend, 0.42, 0.5) * daytime
    morning = np.exp(-(((hour - np.where(weekend, 8.5, 7.5)) / 0.8) ** 2))
    evening = np.exp(-(((hour - 17.5) / 0.85) ** 2))
    peaks = np.where(weekend, 0.12, 0.45) * morning + np.where(weekend, 0.2, 0.5) * evening
    return (base + peaks)[()]


@dataclass(frozen=True)
class Incident:
    """An accident (or a breakdown) at a place; its queue grows for a while, then clears."""

    lat: float
    lon: float
    start: float
    duration_s: float
    severity: float = 0.85
    label: str = "accident"

    def slowdown(self, t: Any, lat: float, lon: float) -> Any:
        """Share of speed lost at a point, 0..severity; the affected radius grows with the queue."""
        elapsed_min = (np.asarray(t, dtype=np.float64) - self.start) / 60
        end_min = self.duration_s / 60
        radius_km = np.minimum(3.0, 0.3 + 0.08 * np.clip(elapsed_min, 0.0, end_min))
        fade = np.where(elapsed_min <= end_min, 1.0, 1 - (elapsed_min - end_min) / 20)
        loss = self.severity * fade * np.exp(-distance_km(self.lat, self.lon, lat, lon) / radius_km)
        return np.where((elapsed_min < 0) | (elapsed_min > end_min + 20), 0.0, loss)[()]


def natural_incidents(seed: int, slot: int, places: Sequence[tuple[float, float]]) -> list[Incident]:
    """The accidents of hour ``slot`` (epoch hours), more in busy hours, each at one of ``places``."""
    rng = random.Random(f"{seed}:incidents:{slot}")
    start = slot * 3600.0
    rate = INCIDENTS_PER_PEAK_HOUR * float(demand(start + 1800))
    incidents = []
    for _ in range(sum(1 for _ in range(6) if rng.random() < rate / 6)):
        if not places:
            break
        lat, lon = rng.choice(places)
        incidents.append(
            Incident(lat, lon, start + rng.uniform(0, 3600), rng.uniform(15, 45) * 60, rng.uniform(0.5, 0.85))
        )
    return incidents


@dataclass(frozen=True)
class Flow:
    """What a detector measures over one interval (numbers, or arrays over a span of intervals)."""

    vehicle_count: Any
    avg_speed_kmh: Any
    occupancy_pct: Any
    ratio: Any
    slowdown: Any


def flooding_slowdown(depth_cm: Any, distance: float) -> Any:
    """Share of speed a flooded street takes from a detector ``distance`` km away."""
    loss = np.minimum(0.8, (np.asarray(depth_cm, dtype=np.float64) - 15) / 35) * math.exp(-distance / 0.8)
    return np.where(np.asarray(depth_cm) <= 15, 0.0, loss)[()]


def flow(
    t: Any,
    lanes: int,
    free_flow_kmh: float,
    interval_s: int,
    slowdown: Any,
    centrality: float,
    noise: Any,
) -> Flow:
    """The flow at a detector for the interval ending at ``t``."""
    ratio = np.maximum(0.0, demand(t) * centrality * noise)
    slowdown = np.minimum(0.9, np.maximum(0.0, slowdown))
    speed = free_flow_kmh * np.maximum(0.25, 1 - 0.65 * np.minimum(ratio, 1.2) ** 2) * (1 - slowdown)
    # A queue lets fewer vehicles past the detector than want to pass.
    served = np.minimum(ratio, 1.05) * (1 - 0.55 * slowdown)
    count = np.rint(served * lanes * VEHICLES_PER_LANE_MIN * interval_s / 60)
    occupancy = np.minimum(98.0, 100 * (0.03 + 0.35 * np.minimum(ratio, 1.2) + 0.55 * (1 - speed / free_flow_kmh)))
    return Flow(count[()], np.round(speed, 1)[()], np.round(occupancy, 1)[()], ratio[()], slowdown[()])

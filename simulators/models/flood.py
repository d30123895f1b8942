"""Street water depth at a flood point: rain beyond the drains and high tide fill it; it drains with a lag."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FloodPoint:
    """One flood-prone spot; ``depth_cm`` is its state, everything else is a fixed trait."""

    device_id: str
    lat: float
    lon: float
    ground_m: float
    capacity_mm_h: float
    gain: float
    drain_min: float
    tide_share: float
    depth_cm: float = 0.0
    rain_mm_h: float = field(default=0.0)

    @classmethod
    def from_device(cls, device_id: str, lat: float, lon: float, metadata: dict[str, object], seed: int) -> FloodPoint:
        """Traits from the device's metadata where given, otherwise drawn from the seed."""
        rng = random.Random(f"{seed}:flood:{device_id}")

        def trait(name: str, low: float, high: float) -> float:
            drawn = rng.uniform(low, high)
            value = metadata.get(name)
            return float(value) if isinstance(value, int | float) else drawn

        return cls(
            device_id=device_id,
            lat=lat,
            lon=lon,
            ground_m=trait("ground_m", 1.35, 1.8),
            capacity_mm_h=trait("drain_capacity_mm_h", 20, 35),
            gain=trait("runoff_gain", 10, 18),
            drain_min=trait("drain_min", 10, 30),
            tide_share=trait("tide_share", 0.25, 0.45),
        )

    def tide_floor_cm(self, tide_m: float) -> float:
        """Water standing in the street while the river is above the street's ground level."""
        return float(tide_floor_cm(tide_m, self.ground_m, self.tide_share))

    def step(self, dt_s: float, rain_mm_h: float, tide_m: float) -> float:
        """Advance the depth by ``dt_s`` seconds; returns the new depth in cm."""
        self.rain_mm_h = rain_mm_h
        self.depth_cm = float(step_depth(self, self.depth_cm, dt_s, rain_mm_h, tide_m))
        return self.depth_cm


def tide_floor_cm(tide_m: Any, ground_m: Any, tide_share: Any) -> Any:
    """Water standing in a street while the river is above its ground level (numbers or arrays)."""
    return np.maximum(0.0, tide_m - ground_m) * 100 * tide_share


def step_depth(points: Any, depth_cm: Any, dt_s: float, rain_mm_h: Any, tide_m: Any) -> Any:
    """The depth after ``dt_s`` seconds at flood points whose traits are numbers (one point) or arrays.

    ``points`` has the traits of ``FloodPoint`` (``ground_m``, ``capacity_mm_h``, ``gain``, ``drain_min``,
    ``tide_share``)."""
    floor = tide_floor_cm(tide_m, points.ground_m, points.tide_share)
    inflow_cm_h = points.gain * np.maximum(0.0, rain_mm_h - points.capacity_mm_h) / 10
    # Drains run slower while the outfalls are submerged by the tide.
    tau_h = points.drain_min / 60 * (1 + 0.5 * np.minimum(1.0, floor / 20))
    target = floor + inflow_cm_h * tau_h
    # Exact solution of d' = (target - d) / tau over the step: stable for any step length.
    decay = np.exp(-dt_s / 3600 / tau_h)
    return target + (depth_cm - target) * decay

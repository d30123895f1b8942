"""Street water depth at a flood point: rain beyond the drains and high tide fill it; it drains with a lag."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


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
    def from_device(
        cls, device_id: str, lat: float, lon: float, metadata: dict[str, object], seed: int
    ) -> FloodPoint:
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
        return max(0.0, tide_m - self.ground_m) * 100 * self.tide_share

    def step(self, dt_s: float, rain_mm_h: float, tide_m: float) -> float:
        """Advance the depth by ``dt_s`` seconds; returns the new depth in cm."""
        self.rain_mm_h = rain_mm_h
        floor = self.tide_floor_cm(tide_m)
        inflow_cm_h = self.gain * max(0.0, rain_mm_h - self.capacity_mm_h) / 10
        # Drains run slower while the outfalls are submerged by the tide.
        tau_h = self.drain_min / 60 * (1 + 0.5 * min(1.0, floor / 20))
        target = floor + inflow_cm_h * tau_h
        # Exact solution of d' = (target - d) / tau over the step: stable for any step length.
        decay = math.exp(-dt_s / 3600 / tau_h)
        self.depth_cm = target + (self.depth_cm - target) * decay
        return self.depth_cm

"""Semi-diurnal tide of the Saigon River at Phú An: M2 plus S2 (spring/neap) plus a seasonal mean."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

M2_PERIOD_S = 12.4206 * 3600
S2_PERIOD_S = 12.0 * 3600
# A spring tide (M2 and S2 in phase at high water) shortly after the new moon of 2000-01-06. S2 follows the
# sun, so spring high waters always fall near 17:30 and 05:30 local time: the evening "triều cường" that
# meets the evening rush hour.
SPRING_EPOCH = datetime(2000, 1, 8, 10, 30, tzinfo=UTC).timestamp()
YEAR_S = 365.2422 * 86400
# Mean water highest in mid-November: the "triều cường" season of October to December.
SEASON_PEAK = datetime(2000, 11, 15, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Tide:
    """Water level in metres (Hòn Dấu datum, as the Phú An alarm levels 1.50/1.60/1.70 m)."""

    mean_m: float = 0.05
    season_m: float = 0.2
    m2_m: float = 1.05
    s2_m: float = 0.35
    surge_m: float = 0.0

    def level_m(self, t: Any) -> Any:
        """The tide level at epoch seconds ``t`` (a number or an array)."""
        t = np.asarray(t, dtype=np.float64)
        dt = t - SPRING_EPOCH
        season = self.season_m * np.cos(2 * math.pi * (t - SEASON_PEAK) / YEAR_S)
        return (
            self.mean_m
            + season
            + self.surge_m
            + self.m2_m * np.cos(2 * math.pi * dt / M2_PERIOD_S)
            + self.s2_m * np.cos(2 * math.pi * dt / S2_PERIOD_S)
        )[()]

    def next_high(self, t: float, step_s: float = 60.0) -> float:
        """Epoch seconds of the first high water strictly after ``t`` (to ``step_s``)."""
        prev, cur = self.level_m(t - step_s), self.level_m(t)
        now = t
        while True:
            nxt = self.level_m(now + step_s)
            if cur >= prev and cur > nxt and now > t:
                return now
            prev, cur, now = cur, nxt, now + step_s

"""Convective rain cells: they form in the afternoon, drift across the city and fade."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from simulators.models.geo import LOCAL_TZ, offset

CITY_CENTRE = (10.79, 106.69)


@dataclass(frozen=True)
class RainCell:
    """A storm cell: Gaussian footprint of ``sigma_km`` moving at (``north_kmh``, ``east_kmh``)."""

    born: float
    lifetime_s: float
    lat: float
    lon: float
    north_kmh: float
    east_kmh: float
    sigma_km: float
    peak_mm_h: float

    def envelope(self, t: Any) -> Any:
        """Growth, maturity and decay of the cell, 0..1, at epoch seconds ``t`` (a number or an array)."""
        age = (np.asarray(t, dtype=np.float64) - self.born) / self.lifetime_s
        return np.clip(np.minimum(age / 0.2, (1 - age) / 0.3), 0.0, 1.0)[()]

    def centre(self, t: Any) -> tuple[Any, Any]:
        """Where the centre of the cell is at ``t``."""
        hours = (t - self.born) / 3600
        return offset(self.lat, self.lon, self.north_kmh * hours, self.east_kmh * hours)

    def rate_mm_h(self, t: Any, lat: float, lon: float) -> Any:
        """Rain rate this cell gives at a point, at ``t`` (a number or an array)."""
        strength = self.envelope(t)
        clat, clon = self.centre(np.asarray(t, dtype=np.float64))
        dy = (lat - clat) * 111.32
        dx = (lon - clon) * 111.32 * math.cos(math.radians(lat))
        return (self.peak_mm_h * strength * np.exp(-(dx * dx + dy * dy) / (2 * self.sigma_km**2)))[()]


def daily_cells(seed: int, day: datetime) -> list[RainCell]:
    """The cells of one local day: a few afternoon storms in the rainy season (May-Nov), rare otherwise."""
    rng = random.Random(f"{seed}:rain:{day.date().isoformat()}")
    rainy = 5 <= day.month <= 11
    mean = 2.0 if rainy else 0.15
    count = 0
    threshold, product = math.exp(-mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    cells = []
    midnight = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
    for _ in range(count):
        over_city = midnight + timedelta(hours=rng.uniform(13.5, 19.5))
        speed = rng.uniform(10, 25)
        heading = rng.uniform(0, 2 * math.pi)
        north, east = speed * math.cos(heading), speed * math.sin(heading)
        lead_h = rng.uniform(0.6, 1.0)
        lateral = rng.uniform(-8, 8)
        # Start upwind so the cell crosses the city about ``lead_h`` after it is born.
        lat, lon = offset(
            *CITY_CENTRE,
            -north * lead_h - lateral * math.sin(heading),
            -east * lead_h + lateral * math.cos(heading),
        )
        cells.append(
            RainCell(
                born=(over_city - timedelta(hours=lead_h)).astimezone(UTC).timestamp(),
                lifetime_s=rng.uniform(1.5, 3.0) * 3600,
                lat=lat,
                lon=lon,
                north_kmh=north,
                east_kmh=east,
                sigma_km=rng.uniform(4.0, 8.0),
                peak_mm_h=rng.uniform(50, 110) if rainy else rng.uniform(15, 40),
            )
        )
    return cells


class RainField:
    """Rain rate anywhere in the city: the sum of the cells of the days around ``t``."""

    def __init__(self, seed: int, extra: list[RainCell] | None = None, natural: bool = True) -> None:
        self._seed = seed
        self._extra = list(extra or [])
        self._natural = natural
        self._days: dict[str, list[RainCell]] = {}
        self._at: tuple[float, list[RainCell]] = (math.nan, [])

    def cells(self, t: float, until: float | None = None) -> list[RainCell]:
        """Cells that may be raining at ``t`` (or at some time up to ``until``)."""
        until = t if until is None else until
        if self._at[0] == t and until == t:  # every flood point asks at the same step time
            return self._at[1]
        cells = list(self._extra)
        if self._natural:
            local = datetime.fromtimestamp(t, UTC).astimezone(LOCAL_TZ)
            for delta in range(-1, int((until - t) // 86400) + 2):
                day = local + timedelta(days=delta)
                key = day.date().isoformat()
                if key not in self._days:
                    self._days[key] = daily_cells(self._seed, day)
                cells.extend(self._days[key])
        active = [c for c in cells if c.born < until and t < c.born + c.lifetime_s]
        if until == t:
            self._at = (t, active)
        return active

    def rate_mm_h(self, t: float, lat: float, lon: float) -> float:
        """Rain rate at a point."""
        return float(sum(cell.rate_mm_h(t, lat, lon) for cell in self.cells(t)))

    def rate_series(self, times: Any, lat: float, lon: float) -> Any:
        """Rain rate at a point over an array of times (the same cells as ``rate_mm_h``)."""
        times = np.asarray(times, dtype=np.float64)
        total = np.zeros_like(times)
        for cell in self.cells(float(times[0]), float(times[-1])):
            total += cell.rate_mm_h(times, lat, lon)
        return total

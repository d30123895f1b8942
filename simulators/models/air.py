"""Air quality at a sensor in Ho Chi Minh City: traffic-driven diurnal cycle, season, rain washout, burning
episodes, and what a low-cost sensor makes of it (humidity growth, drift, a stuck reading).

Pure: every value is a function of the time, the site and what the caller passes in (the traffic demand and
congestion, recent rain); only the measurement noise comes from the caller. Levels follow the published
picture of the city: PM2.5 mostly 20-60 ug/m3, higher at the rush hours, at night under a low mixing layer and
in the dry season (December to April); NO2 and CO peak with the traffic, O3 at midday.

Every function takes numbers or arrays (of times, conditions): the live simulation asks for one reading
(``reading``), the history (simulators/history.py) for a whole span at once (``measure``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from ioc.fleet import DeviceSpec
from simulators.models.geo import LOCAL_OFFSET_S, local_hours

DRY_MONTHS = (12, 1, 2, 3, 4)
BURNING_DAYS_IN = 5  # about one evening in five, somewhere in a district whose zone has ``burning_risk``
DRIFT_EPOCH = 1_735_689_600.0  # 2025-01-01 UTC
DRIFT_PER_DAY = 0.02  # a drifting optical sensor reads 2 %/day more, recalibrated every 30 days
DRIFT_CYCLE_DAYS = 30
STUCK_EVERY_S = 6 * 3600  # a sticky sensor repeats one reading for the first 50 minutes of every 6 hours
STUCK_FOR_S = 50 * 60
WASHOUT_MM_H = 6.0  # rain at this rate removes about 63 % of the particles
RECENT_RAIN_S = (1800.0, 3600.0, 5400.0, 7200.0)  # washout lingers: the mean rain at these times before
POLLUTANTS = ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", "o3_ugm3", "co_ugm3", "so2_ugm3")
CLIMATE = ("temperature_c", "humidity_pct")
NOISE = (*POLLUTANTS, *CLIMATE)  # one standard normal draw each, in this order
# What a sensor reports unless its metadata lists ``measures``: a Sensor.Community node has a particle
# counter and a climate sensor; the gas nodes (canonical, SenML) and reference stations (FIWARE) more.
MEASURES: dict[str, tuple[str, ...]] = {
    "sensorcommunity": ("pm10_ugm3", "pm25_ugm3", *CLIMATE),
    "canonical": ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", "o3_ugm3", "co_ugm3", *CLIMATE),
    "senml": ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", *CLIMATE),
    "fiware": (*POLLUTANTS, *CLIMATE),
}
DIGITS = {**{m: 1 for m in POLLUTANTS}, "co_ugm3": 0, "temperature_c": 1, "humidity_pct": 1}


@dataclass(frozen=True)
class AirSite:
    """Where a sensor stands and what kind of instrument it is."""

    device_id: str
    lat: float
    lon: float
    roadside: float = 1.0  # traffic exposure: 1.3 at a busy junction, 0.7 in a park
    low_cost: bool = True  # an optical particle counter (humidity growth); False: a reference monitor
    burning_risk: bool = False  # its district has evening burning episodes (farm waste, rubbish)
    fault: str = ""  # "", "drift" or "stuck"

    @classmethod
    def from_device(cls, spec: DeviceSpec, burning_zones: frozenset[str] | set[str]) -> AirSite:
        """The site of an air device of the fleet (``burning_zones``: the zones with ``burning_risk``)."""
        return cls(
            spec.device_id,
            spec.lat,
            spec.lon,
            float(spec.metadata.get("roadside", 1.0)),
            spec.metadata.get("sensor") != "reference",
            spec.zone in burning_zones,
            str(spec.metadata.get("sensor_fault", "")),
        )


@dataclass(frozen=True)
class Conditions:
    """What the rest of the simulated city says at the sensor's place and time (numbers or arrays)."""

    demand: Any  # traffic volume over capacity, 0.05 at night to about 1 at the peaks (models.traffic.demand)
    congestion: Any  # share of speed lost at the nearest detector, 0..1
    rain_mm_h: Any  # rain now
    rain_recent_mm_h: Any  # mean rain over the last two hours (washout lingers)


def conditions(t: Any, demand: Any, congestion: Any, rain_at: Callable[[Any], Any]) -> Conditions:
    """The conditions at ``t`` given the demand and congestion there and the rain rate at the site by time."""
    recent = sum(rain_at(t - back) for back in RECENT_RAIN_S) / len(RECENT_RAIN_S)
    return Conditions(demand, congestion, rain_at(t), recent)


def _month(t: Any) -> Any:
    local = np.floor(np.asarray(t, dtype=np.float64) + LOCAL_OFFSET_S).astype("datetime64[s]")
    return local.astype("datetime64[M]").astype(np.int64) % 12 + 1


def season(t: Any) -> Any:
    """1.35 in the dry season, 0.85 in the rainy one, with a month of transition either side."""
    month = _month(t)
    return np.where(np.isin(month, DRY_MONTHS), 1.35, np.where(np.isin(month, (5, 11)), 1.1, 0.85))[()]


def mixing(hour: Any) -> Any:
    """Dilution by the boundary layer: pollution gathers at night and thins out around midday."""
    return (1.0 + 0.25 * np.cos(2 * math.pi * (np.asarray(hour, dtype=np.float64) - 3.0) / 24.0))[()]


def sunlight(hour: Any) -> Any:
    """0 at night, 1 at solar noon (about 12:00 local)."""
    return np.maximum(0.0, np.sin(math.pi * (np.asarray(hour, dtype=np.float64) - 6.0) / 12.0))[()]


def weather(t: Any, rain_mm_h: Any) -> tuple[Any, Any]:
    """Temperature (Cel) and relative humidity (%) at ``t``: 26/90 before dawn, 33/58 mid-afternoon."""
    hour, _ = local_hours(t)
    warm = np.cos(2 * math.pi * (hour - 14.5) / 24.0)
    dry = season(t) > 1.0
    temperature = 29.5 + np.where(dry, 4.0, 3.0) * warm - np.minimum(3.0, rain_mm_h * 0.3)
    humidity = 74.0 - 16.0 * warm + np.where(dry, 0.0, 8.0) + np.minimum(20.0, rain_mm_h * 2.0)
    return temperature[()], np.minimum(99.0, humidity)[()]


def _episode(seed: int, zone: str, day: int) -> tuple[float, float]:
    """(peak hour, PM2.5 at the peak) of the burning episode of local day ``day`` (days since 1970), or zeros."""
    when = date(1970, 1, 1) + timedelta(days=day)
    rng = random.Random(f"{seed}:burning:{zone}:{when.isoformat()}")
    if rng.randrange(BURNING_DAYS_IN):
        return 0.0, 0.0
    return rng.uniform(18.0, 21.0), rng.uniform(60.0, 140.0)


def burning(t: Any, seed: int, zone: str) -> Any:
    """PM2.5 (ug/m3) added by an evening burning episode in ``zone`` (0 on most evenings)."""
    local = np.asarray(t, dtype=np.float64) + LOCAL_OFFSET_S
    day = np.floor(local / 86400).astype(np.int64)
    hour = np.floor((local - day * 86400) / 60) / 60  # to the minute
    days = np.unique(day)
    episodes = np.array([_episode(seed, zone, int(d)) for d in days]).reshape(-1, 2)
    peak_at, strength = episodes[np.searchsorted(days, day)].T
    return (strength * np.exp(-(((hour - peak_at) / 1.2) ** 2)))[()]


def humidity_growth(humidity_pct: Any) -> Any:
    """How much more an optical counter reads in humid air (particles take up water): 1.05 at 70 %, 1.4 at 90 %."""
    rh = np.minimum(humidity_pct, 97.0) / 100.0
    return (1.0 + 0.05 * rh * rh / (1.0 - rh))[()]


def true_levels(site: AirSite, t: Any, c: Conditions, smoke: Any) -> dict[str, Any]:
    """Ambient concentrations (ug/m3) at the site, before any instrument error."""
    hour, _ = local_hours(t)
    traffic = c.demand * site.roadside * (1.0 + 0.6 * c.congestion)  # stop-and-go emits more
    washout = np.exp(-np.maximum(c.rain_mm_h, c.rain_recent_mm_h) / WASHOUT_MM_H)
    gather = mixing(hour) * season(t)
    pm25 = (14.0 + 24.0 * traffic) * gather * (0.35 + 0.65 * washout) + smoke
    no2 = (12.0 + 48.0 * traffic) * mixing(hour) * (0.8 + 0.2 * washout)
    co = (450.0 + 1600.0 * traffic) * gather + 12.0 * smoke
    light = sunlight(hour)
    o3 = np.maximum(
        4.0, (18.0 + 95.0 * light * (0.6 + 0.4 * season(t))) * (1.0 - 0.35 * np.minimum(1.0, traffic)) * washout**0.3
    )
    so2 = (6.0 + 7.0 * traffic) * gather
    return {
        "pm25_ugm3": pm25[()],
        "pm10_ugm3": (pm25 * (1.55 + 0.25 * washout))[()],  # road dust; rain lays it
        "no2_ugm3": no2[()],
        "o3_ugm3": o3[()],
        "co_ugm3": co[()],
        "so2_ugm3": so2[()],
    }


def stuck(site: AirSite, t: Any) -> Any:
    """True while a sticky sensor repeats the reading of the start of its window."""
    return (site.fault == "stuck") & (np.asarray(t, dtype=np.float64) % STUCK_EVERY_S < STUCK_FOR_S)[()]


def sample_time(site: AirSite, t: Any) -> Any:
    """When the air the instrument reports at ``t`` was sampled: ``t``, or the start of a stuck window."""
    t = np.asarray(t, dtype=np.float64)
    return np.where(stuck(site, t), t - t % STUCK_EVERY_S, t)[()]


def measure(site: AirSite, t: Any, c: Conditions, smoke: Any, z: dict[str, Any]) -> dict[str, Any]:
    """What the instrument reports for air sampled at ``t`` (unrounded), with ``z`` a standard normal draw per
    name of NOISE (numbers or arrays). ``c`` and ``smoke`` are those of ``t``."""
    temperature, humidity = weather(t, c.rain_mm_h)
    levels = true_levels(site, t, c, smoke)
    optical = humidity_growth(humidity) if site.low_cost else 1.0
    if site.fault == "drift":
        optical = optical * (1.0 + DRIFT_PER_DAY * (((np.asarray(t) - DRIFT_EPOCH) / 86400.0) % DRIFT_CYCLE_DAYS))
    spread = 0.12 if site.low_cost else 0.04
    out: dict[str, Any] = {}
    for metric, value in levels.items():
        factor = optical if metric in ("pm25_ugm3", "pm10_ugm3") else 1.0
        out[metric] = np.maximum(0.0, value * factor * (1.0 + z[metric] * spread))[()]
    out["temperature_c"] = (temperature + z["temperature_c"] * 0.2)[()]
    out["humidity_pct"] = np.clip(humidity + z["humidity_pct"] * 1.0, 0.0, 100.0)[()]
    return out


def reading(site: AirSite, t: float, c: Conditions, smoke: float, rng: random.Random) -> dict[str, float]:
    """What the instrument reports at ``t``: every pollutant, temperature and humidity (unrounded).

    ``c`` and ``smoke`` are those of ``sample_time(site, t)``; a stuck window draws its noise once."""
    if stuck(site, t):
        t = float(sample_time(site, t))
        rng = random.Random(f"{site.device_id}:stuck:{t}")
    return {k: float(v) for k, v in measure(site, t, c, smoke, {name: rng.gauss(0.0, 1.0) for name in NOISE}).items()}


def measures(spec: DeviceSpec) -> tuple[str, ...]:
    """The metrics an air device reports (its metadata's ``measures``, else its format's usual set)."""
    return tuple(spec.metadata.get("measures") or MEASURES[spec.format])

"""Air quality at a sensor in Ho Chi Minh City: traffic-driven diurnal cycle, season, rain washout, burning
episodes, and what a low-cost sensor makes of it (humidity growth, drift, a stuck reading).

Pure: every value is a function of the time, the site and what the caller passes in (the traffic demand and
congestion, recent rain); only the measurement noise comes from the caller's generator. Levels follow the
published picture of the city: PM2.5 mostly 20-60 ug/m3, higher at the rush hours, at night under a low
mixing layer and in the dry season (December to April); NO2 and CO peak with the traffic, O3 at midday.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from simulators.models.geo import LOCAL_TZ, local_hours

DRY_MONTHS = frozenset({12, 1, 2, 3, 4})
BURNING_DAYS_IN = 5  # about one evening in five, somewhere in a district whose zone has ``burning_risk``
DRIFT_EPOCH = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
DRIFT_PER_DAY = 0.02  # a drifting optical sensor reads 2 %/day more, recalibrated every 30 days
DRIFT_CYCLE_DAYS = 30
STUCK_EVERY_S = 6 * 3600  # a sticky sensor repeats one reading for the first 50 minutes of every 6 hours
STUCK_FOR_S = 50 * 60
WASHOUT_MM_H = 6.0  # rain at this rate removes about 63 % of the particles
POLLUTANTS = ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", "o3_ugm3", "co_ugm3", "so2_ugm3")
CLIMATE = ("temperature_c", "humidity_pct")
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


@dataclass(frozen=True)
class Conditions:
    """What the rest of the simulated city says at the sensor's place and time."""

    demand: float  # traffic volume over capacity, 0.05 at night to about 1 at the peaks (models.traffic.demand)
    congestion: float  # share of speed lost at the nearest detector, 0..1
    rain_mm_h: float  # rain now
    rain_recent_mm_h: float  # mean rain over the last two hours (washout lingers)


def season(t: float) -> float:
    """1.35 in the dry season, 0.85 in the rainy one, with a month of transition either side."""
    month = datetime.fromtimestamp(t, UTC).astimezone(LOCAL_TZ).month
    if month in DRY_MONTHS:
        return 1.35
    return 1.1 if month in (5, 11) else 0.85


def mixing(hour: float) -> float:
    """Dilution by the boundary layer: pollution gathers at night and thins out around midday."""
    return 1.0 + 0.25 * math.cos(2 * math.pi * (hour - 3.0) / 24.0)


def sunlight(hour: float) -> float:
    """0 at night, 1 at solar noon (about 12:00 local)."""
    return max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0))


def weather(t: float, rain_mm_h: float) -> tuple[float, float]:
    """Temperature (Cel) and relative humidity (%) at ``t``: 26/90 before dawn, 33/58 mid-afternoon."""
    hour, _ = local_hours(t)
    warm = math.cos(2 * math.pi * (hour - 14.5) / 24.0)
    dry = season(t) > 1.0
    temperature = 29.5 + (4.0 if dry else 3.0) * warm - min(3.0, rain_mm_h * 0.3)
    humidity = 74.0 - 16.0 * warm + (0.0 if dry else 8.0) + min(20.0, rain_mm_h * 2.0)
    return temperature, min(99.0, humidity)


def burning(t: float, seed: int, zone: str) -> float:
    """PM2.5 (ug/m3) added by an evening burning episode in ``zone`` (0 on most evenings)."""
    local = datetime.fromtimestamp(t, UTC).astimezone(LOCAL_TZ)
    day = random.Random(f"{seed}:burning:{zone}:{local.date().isoformat()}")
    if day.randrange(BURNING_DAYS_IN):
        return 0.0
    peak_at, strength = day.uniform(18.0, 21.0), day.uniform(60.0, 140.0)
    hour = local.hour + local.minute / 60
    return strength * math.exp(-(((hour - peak_at) / 1.2) ** 2))


def humidity_growth(humidity_pct: float) -> float:
    """How much more an optical counter reads in humid air (particles take up water): 1.05 at 70 %, 1.4 at 90 %."""
    rh = min(humidity_pct, 97.0) / 100.0
    return 1.0 + 0.05 * rh * rh / (1.0 - rh)


def true_levels(site: AirSite, t: float, c: Conditions, smoke: float) -> dict[str, float]:
    """Ambient concentrations (ug/m3) at the site, before any instrument error."""
    hour, _ = local_hours(t)
    traffic = c.demand * site.roadside * (1.0 + 0.6 * c.congestion)  # stop-and-go emits more
    washout = math.exp(-max(c.rain_mm_h, c.rain_recent_mm_h) / WASHOUT_MM_H)
    gather = mixing(hour) * season(t)
    pm25 = (14.0 + 24.0 * traffic) * gather * (0.35 + 0.65 * washout) + smoke
    no2 = (12.0 + 48.0 * traffic) * mixing(hour) * (0.8 + 0.2 * washout)
    co = (450.0 + 1600.0 * traffic) * gather + 12.0 * smoke
    light = sunlight(hour)
    o3 = max(4.0, (18.0 + 95.0 * light * (0.6 + 0.4 * season(t))) * (1.0 - 0.35 * min(1.0, traffic)) * washout**0.3)
    so2 = (6.0 + 7.0 * traffic) * gather
    return {
        "pm25_ugm3": pm25,
        "pm10_ugm3": pm25 * (1.55 + 0.25 * washout),  # road dust; rain lays it
        "no2_ugm3": no2,
        "o3_ugm3": o3,
        "co_ugm3": co,
        "so2_ugm3": so2,
    }


def stuck(site: AirSite, t: float) -> bool:
    """True while a sticky sensor repeats the reading of the start of its window."""
    return site.fault == "stuck" and t % STUCK_EVERY_S < STUCK_FOR_S


def sample_time(site: AirSite, t: float) -> float:
    """When the air the instrument reports at ``t`` was sampled: ``t``, or the start of a stuck window."""
    return t - t % STUCK_EVERY_S if stuck(site, t) else t


def reading(site: AirSite, t: float, c: Conditions, smoke: float, rng: random.Random) -> dict[str, float]:
    """What the instrument reports at ``t``: every pollutant, temperature and humidity (unrounded).

    ``c`` and ``smoke`` are those of ``sample_time(site, t)``."""
    if stuck(site, t):
        t = sample_time(site, t)
        rng = random.Random(f"{site.device_id}:stuck:{t}")
    temperature, humidity = weather(t, c.rain_mm_h)
    levels = true_levels(site, t, c, smoke)
    optical = humidity_growth(humidity) if site.low_cost else 1.0
    if site.fault == "drift":
        optical *= 1.0 + DRIFT_PER_DAY * (((t - DRIFT_EPOCH) / 86400.0) % DRIFT_CYCLE_DAYS)
    spread = 0.12 if site.low_cost else 0.04
    out: dict[str, float] = {}
    for metric, value in levels.items():
        factor = optical if metric in ("pm25_ugm3", "pm10_ugm3") else 1.0
        out[metric] = max(0.0, value * factor * rng.gauss(1.0, spread))
    out["temperature_c"] = temperature + rng.gauss(0.0, 0.2)
    out["humidity_pct"] = min(100.0, max(0.0, humidity + rng.gauss(0.0, 1.0)))
    return out

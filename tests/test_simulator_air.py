"""The simulated air sensors behave like Ho Chi Minh City's: rush hours, dry season, rain washout, humid-air
overestimates of low-cost counters, burning evenings, drift and stuck faults; every format in the demo fleet."""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from ioc.fleet import Fleet, load_fleet
from ioc.settings import REPO_ROOT
from simulators.models import air
from simulators.models.geo import LOCAL_TZ
from simulators.models.traffic import demand
from simulators.runner import Simulation

SITE = air.AirSite("AQ-T-1", 10.78, 106.70)
REFERENCE = air.AirSite("AQ-T-2", 10.78, 106.70, low_cost=False)


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")


def local(month: int, day: int, hour: float) -> float:
    return (datetime(2026, month, day, tzinfo=LOCAL_TZ) + timedelta(hours=hour)).timestamp()


def dry(t: float, congestion: float = 0.0) -> air.Conditions:
    return air.Conditions(demand(t), congestion, 0.0, 0.0)


def pm25(site: air.AirSite, t: float, c: air.Conditions, smoke: float = 0.0) -> float:
    """The median of many readings: the model's level without its noise."""
    rng = random.Random(1)
    return statistics.median(air.reading(site, t, c, smoke, rng)["pm25_ugm3"] for _ in range(201))


def test_pm25_is_in_the_citys_range_and_peaks_at_the_rush_hours() -> None:
    day = [pm25(REFERENCE, local(1, 14, h), dry(local(1, 14, h))) for h in range(24)]  # a dry-season Wednesday
    assert 12 <= min(day) and max(day) <= 75
    assert 20 <= statistics.median(day) <= 60
    assert day[7] > day[11] * 1.3 and day[17] > day[14] * 1.2  # morning and evening traffic
    assert day[7] == max(day)


def test_traffic_drives_no2_and_co_and_sunlight_ozone() -> None:
    t_peak, t_night, t_noon = local(1, 14, 7.5), local(1, 14, 3), local(1, 14, 13)
    peak, night = (air.true_levels(SITE, t, dry(t), 0.0) for t in (t_peak, t_night))
    assert peak["no2_ugm3"] > 2.5 * night["no2_ugm3"] and peak["co_ugm3"] > 2 * night["co_ugm3"]
    jam = air.true_levels(SITE, t_peak, dry(t_peak, congestion=0.7), 0.0)
    assert jam["no2_ugm3"] > peak["no2_ugm3"] * 1.2  # stop-and-go at the nearest detector
    noon = air.true_levels(SITE, t_noon, dry(t_noon), 0.0)
    assert noon["o3_ugm3"] > 3 * night["o3_ugm3"]


def test_the_dry_season_is_dirtier_than_the_rainy_one() -> None:
    january = statistics.mean(pm25(REFERENCE, local(1, 14, h), dry(local(1, 14, h))) for h in range(24))
    august = statistics.mean(pm25(REFERENCE, local(8, 12, h), dry(local(8, 12, h))) for h in range(24))
    assert january > 1.4 * august


def test_rain_washes_particles_out_and_it_lingers() -> None:
    t = local(8, 12, 17.5)
    before = pm25(REFERENCE, t, dry(t))
    storm = pm25(REFERENCE, t, air.Conditions(demand(t), 0.0, 30.0, 15.0))
    after = pm25(REFERENCE, t, air.Conditions(demand(t), 0.0, 0.0, 8.0))  # stopped, but it rained in the last 2 h
    assert storm < 0.5 * before and storm < after < before


def test_low_cost_counters_overestimate_in_humid_air() -> None:
    assert air.humidity_growth(60) < 1.05 < air.humidity_growth(90)
    t = local(1, 14, 4)  # before dawn: humid
    _, humidity = air.weather(t, 0.0)
    assert humidity >= 85
    assert pm25(SITE, t, dry(t)) > 1.25 * pm25(REFERENCE, t, dry(t))


def test_burning_evenings_come_now_and_then_in_the_district_at_risk() -> None:
    evenings = [max(air.burning(local(1, d, h / 4), 0, "binhtan") for h in range(68, 90)) for d in range(1, 31)]
    assert 2 <= sum(1 for e in evenings if e > 30) <= 14
    assert max(evenings) >= 50 and min(evenings) == 0.0
    assert air.burning(local(1, 5, 10), 0, "binhtan") < 1  # an evening thing


def test_a_drifting_sensor_creeps_up_and_a_stuck_one_repeats_itself() -> None:
    drift = air.AirSite("AQ-T-3", 10.78, 106.70, fault="drift")
    t = air.DRIFT_EPOCH + 29 * 86400 + 43200  # day 29 of the recalibration cycle
    assert pm25(drift, t, dry(t)) > 1.5 * pm25(SITE, t, dry(t))
    stuck = air.AirSite("AQ-T-4", 10.78, 106.70, fault="stuck")
    start = local(1, 14, 7) - local(1, 14, 7) % air.STUCK_EVERY_S
    rng = random.Random(2)
    assert air.sample_time(stuck, start + 49 * 60) == start and air.sample_time(SITE, start + 60) == start + 60
    window = [air.reading(stuck, start + k * 60, dry(start), 0.0, rng) for k in range(0, 50, 7)]
    assert len({r["pm25_ugm3"] for r in window}) == 1
    later = [air.reading(stuck, start + 3600 + k * 60, dry(start + 3600), 0.0, rng) for k in range(3)]
    assert len({r["pm25_ugm3"] for r in later}) == 3


def test_the_demo_fleet_has_twenty_air_sensors_in_every_format_pilots_first(fleet: Fleet) -> None:
    sensors = [d for d in fleet.devices if d.kind == "air"]
    assert len(sensors) >= 20
    assert {d.zone for d in sensors} == {z.zone_id for z in fleet.zones}
    per_zone = Counter(d.zone for d in sensors)
    assert all(per_zone[z.zone_id] >= 3 for z in fleet.zones if z.priority)
    assert {d.format for d in sensors} == {"sensorcommunity", "canonical", "senml", "fiware"}
    assert {d.metadata.get("sensor_fault") for d in sensors} >= {"drift", "stuck"}
    boards = [d.metadata["hardware_id"] for d in sensors if d.format == "sensorcommunity"]
    assert len(boards) == len(set(boards)) >= 8


def test_simulated_air_readings_follow_the_traffic_over_a_day(fleet: Fleet) -> None:
    city = Fleet(fleet.zones, tuple(d for d in fleet.devices if d.kind in ("air", "traffic")), fleet.kinds)
    sim = Simulation(city, seed=4, start=datetime.fromtimestamp(local(1, 14, 0), LOCAL_TZ), encode=False)
    by_hour: dict[int, list[float]] = defaultdict(list)
    metrics: dict[str, set[str]] = defaultdict(set)
    for message in sim.messages(86400):
        if message.reading is None or not message.device_id.startswith("AQ-"):
            continue
        metrics[message.device_id] |= set(message.reading.metrics)
        if "pm25_ugm3" in message.reading.metrics:
            by_hour[message.model_time.astimezone(LOCAL_TZ).hour].append(message.reading.metrics["pm25_ugm3"])
    median = {h: statistics.median(v) for h, v in by_hour.items()}
    assert 20 <= statistics.median(median.values()) <= 60
    assert median[7] > median[13] * 1.3
    assert metrics["AQ-Q1-001"] >= set(air.POLLUTANTS)  # a reference station measures every pollutant
    assert metrics["AQ-Q1-002"] == {"pm10_ugm3", "pm25_ugm3", "temperature_c", "humidity_pct"}
    assert "battery_pct" in metrics["AQ-Q1-004"]


def test_a_kind_without_a_model_is_left_out_not_fatal(fleet: Fleet) -> None:
    ghost = replace(fleet.devices[0], device_id="NS-X-1", kind="noise")
    noise = replace(next(iter(fleet.kinds.values())), name="noise")
    city = Fleet(fleet.zones, (*fleet.devices[:3], ghost), {**fleet.kinds, "noise": noise})
    sim = Simulation(city, seed=1, start=datetime.fromtimestamp(local(1, 14, 8), LOCAL_TZ))
    assert [d.device_id for d in sim.simulated()] == sorted(d.device_id for d in fleet.devices[:3])
    assert {m.device_id for m in sim.messages(300)} == {d.device_id for d in fleet.devices[:3]}

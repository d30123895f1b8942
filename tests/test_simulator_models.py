"""The simulator's models behave like the city: tides, storms that flood and drain, rush hours, incidents."""

from __future__ import annotations

import random
import statistics
from datetime import datetime, timedelta

import pytest

from ioc.fleet import Fleet, load_fleet
from ioc.settings import REPO_ROOT
from simulators.models.crowd import activity
from simulators.models.flood import FloodPoint
from simulators.models.geo import LOCAL_TZ, distance_km
from simulators.models.rain import RainCell, daily_cells
from simulators.models.tide import M2_PERIOD_S, Tide
from simulators.models.traffic import Incident, demand, flow
from simulators.runner import Simulation
from simulators.scenarios import HANG_XANH


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


def high_waters(tide: Tide, start: float, days: float) -> list[tuple[float, float]]:
    highs, t = [], start
    while t < start + days * 86400:
        t = tide.next_high(t)
        highs.append((t, tide.level_m(t)))
    return highs


def test_tide_is_semi_diurnal_with_the_m2_period() -> None:
    tide = Tide()
    highs = high_waters(tide, local(2025, 10, 1, 0).timestamp(), 30)
    gaps = [b[0] - a[0] for a, b in zip(highs, highs[1:], strict=False)]
    assert 56 <= len(highs) <= 60  # two high waters a day
    assert statistics.mean(gaps) == pytest.approx(M2_PERIOD_S, rel=0.01)


def test_spring_tides_are_higher_than_neap_tides_and_peak_in_the_flood_season() -> None:
    tide = Tide()
    levels = [level for _, level in high_waters(tide, local(2025, 11, 1, 0).timestamp(), 15)]
    assert max(levels) >= 1.6  # past alarm level 2 at Phú An during "triều cường"
    assert min(levels) <= 1.1  # neap high waters stay low
    spring_may = max(level for _, level in high_waters(tide, local(2025, 5, 1, 0).timestamp(), 15))
    assert spring_may < max(levels) - 0.2


def test_rainy_season_days_have_afternoon_storms_and_dry_season_days_rarely() -> None:
    rainy = [len(daily_cells(7, local(2025, 8, 1, 0) + timedelta(days=d))) for d in range(60)]
    dry = [len(daily_cells(7, local(2025, 2, 1, 0) + timedelta(days=d))) for d in range(60)]
    assert statistics.mean(rainy) > 1.2 > 0.5 > statistics.mean(dry)
    cells = [c for d in range(30) for c in daily_cells(7, local(2025, 9, 1, 0) + timedelta(days=d))]
    hours = [datetime.fromtimestamp(c.born, LOCAL_TZ).hour for c in cells]
    assert hours and all(11 <= h <= 19 for h in hours)


def test_a_passing_cell_gives_50_to_100_mm_in_one_to_two_hours() -> None:
    cell = RainCell(
        born=0, lifetime_s=3 * 3600, lat=10.70, lon=106.70, north_kmh=15, east_kmh=0, sigma_km=5, peak_mm_h=90
    )
    point = (10.79, 106.70)  # on the track, reached after about 40 minutes
    rates = [cell.rate_mm_h(t, *point) for t in range(0, 3 * 3600, 60)]
    total_mm = sum(rates) / 60
    wet_minutes = sum(1 for r in rates if r > 5)
    assert 50 <= total_mm <= 100
    assert 60 <= wet_minutes <= 120
    assert cell.rate_mm_h(3600, 10.79, 106.90) < 1  # 20 km off the track stays dry


def point(**traits: float) -> FloodPoint:
    return FloodPoint.from_device(
        "FL-X",
        10.79,
        106.72,
        {
            "ground_m": 1.4,
            "drain_capacity_mm_h": 25,
            "runoff_gain": 15,
            "drain_min": 20,
            "tide_share": 0.4,
            **traits,
        },
        seed=1,
    )


def test_street_fills_with_heavy_rain_and_drains_with_a_lag() -> None:
    spot = point()
    for _ in range(40):  # 40 minutes of 100 mm/h at low tide
        spot.step(60, 100, tide_m=0.0)
    peak = spot.depth_cm
    assert peak > 30
    for _ in range(10):
        spot.step(60, 0, tide_m=0.0)
    assert 0.4 * peak < spot.depth_cm < peak  # still draining ten minutes later
    for _ in range(170):
        spot.step(60, 0, tide_m=0.0)
    assert spot.depth_cm < 2


def test_high_tide_alone_floods_only_points_below_the_river() -> None:
    low, high = point(ground_m=1.4), point(ground_m=1.9)
    for _ in range(120):
        low.step(60, 0, tide_m=1.7)
        high.step(60, 0, tide_m=1.7)
    assert 8 < low.depth_cm < 20
    assert high.depth_cm == 0
    light_rain = point()
    for _ in range(60):
        light_rain.step(60, 15, tide_m=0.0)  # below the drains' capacity
    assert light_rain.depth_cm == 0


def test_storm_floods_several_points_past_30_cm_and_they_drain_back(fleet: Fleet) -> None:
    sim = Simulation(fleet, seed=5, speed=60, start=local(2025, 10, 10, 14), scenario="storm")
    start_local = sim.start.astimezone(LOCAL_TZ)
    assert 12 <= start_local.hour < 22  # an afternoon or evening spring high water
    assert sim.tide.level_m(sim.start.timestamp() + 25 * 60) >= 1.6
    peaks: dict[str, float] = {}
    for minute in range(1, 151):
        list(sim.advance(sim.start + timedelta(minutes=minute)))
        for device_id, depth in sim.flood_depths().items():
            peaks[device_id] = max(peaks.get(device_id, 0.0), depth)
        if minute == 60:
            at_60 = sim.flood_depths()
    flooded = [d for d, p in peaks.items() if p > 30]
    assert len(flooded) >= 8
    assert sum(1 for d in flooded if at_60[d] < 30) >= 5
    final = sim.flood_depths()
    assert all(final[d] < 30 for d in flooded)
    assert all(final[d] < peaks[d] - 15 for d in flooded)


def test_weekday_rush_hours_peak_and_weekends_are_lower() -> None:
    wednesday, sunday = local(2025, 10, 15, 0), local(2025, 10, 19, 0)
    at = lambda day, h: demand((day + timedelta(hours=h)).timestamp())  # noqa: E731
    night = at(wednesday, 3)
    assert at(wednesday, 7.5) > 3 * night
    assert at(wednesday, 17.5) > 3 * night
    assert at(wednesday, 7.5) > at(wednesday, 11) and at(wednesday, 17.5) > at(wednesday, 14)
    assert at(sunday, 7.5) < at(wednesday, 7.5) - 0.2
    assert at(sunday, 17.5) < at(wednesday, 17.5) - 0.2
    peak = flow((wednesday + timedelta(hours=17.5)).timestamp(), 4, 40, 60, 0.0, 1.05, 1.0)
    quiet = flow((wednesday + timedelta(hours=3)).timestamp(), 4, 40, 60, 0.0, 1.05, 1.0)
    assert peak.vehicle_count > 4 * quiet.vehicle_count
    assert 10 <= peak.avg_speed_kmh <= 20 < 35 < quiet.avg_speed_kmh


def test_incident_slowdown_is_strongest_nearby_and_spreads_with_time() -> None:
    accident = Incident(*HANG_XANH, start=0, duration_s=3600, severity=0.85)
    near, far = (10.8030, 106.7110), (10.8200, 106.7107)  # ~0.1 km and ~2 km away
    assert distance_km(*HANG_XANH, *far) == pytest.approx(2.0, abs=0.1)
    assert accident.slowdown(60, *near) > 0.5
    assert accident.slowdown(60, *far) < 0.02
    assert accident.slowdown(30 * 60, *far) > 0.2  # the queue has grown
    assert accident.slowdown(3600 + 25 * 60, *near) == 0  # cleared


def test_incident_scenario_slows_the_detectors_around_the_junction(fleet: Fleet) -> None:
    start = local(2025, 10, 15, 10)
    base = Simulation(fleet, seed=2, start=start, scenario=None)
    hit = Simulation(fleet, seed=2, start=start, scenario="incident")
    list(base.advance(start + timedelta(minutes=30)))
    list(hit.advance(start + timedelta(minutes=30)))
    # The comparison run has no accident of its own near the junction.
    assert all(distance_km(i.lat, i.lon, *HANG_XANH) > 5 for i in base.incidents(base.now))
    detectors = {
        d.device_id: distance_km(d.lat, d.lon, *HANG_XANH) for d in fleet.devices if d.kind == "traffic"
    }
    near = [d for d, km in detectors.items() if km < 1.0]
    far = [d for d, km in detectors.items() if km > 8.0]
    assert len(near) >= 2 and far
    for device_id in near:
        assert hit.traffic_now()[device_id].avg_speed_kmh < 0.5 * base.traffic_now()[device_id].avg_speed_kmh
    for device_id in far:
        assert hit.traffic_now()[device_id].avg_speed_kmh == pytest.approx(
            base.traffic_now()[device_id].avg_speed_kmh, rel=0.2
        )


def test_crowds_gather_in_the_evening_and_more_at_weekends() -> None:
    wednesday, saturday = local(2025, 10, 15, 0), local(2025, 10, 18, 0)
    assert activity((wednesday + timedelta(hours=19.5)).timestamp()) > 5 * activity(
        (wednesday + timedelta(hours=3)).timestamp()
    )
    assert activity((saturday + timedelta(hours=19.5)).timestamp()) > activity(
        (wednesday + timedelta(hours=19.5)).timestamp()
    )


def test_cameras_count_the_traffic_near_them(fleet: Fleet) -> None:
    sim = Simulation(fleet, seed=4, start=local(2025, 10, 15, 3), scenario=None)
    night = _camera_vehicles(sim, 30)
    sim_peak = Simulation(fleet, seed=4, start=local(2025, 10, 15, 17, 15), scenario=None)
    peak = _camera_vehicles(sim_peak, 30)
    assert statistics.mean(peak) > 3 * statistics.mean(night)


def _camera_vehicles(sim: Simulation, minutes: int) -> list[int]:
    import json

    counts = []
    for message in sim.advance(sim.start + timedelta(minutes=minutes)):
        if message.channel == "telemetry" and message.topic.startswith("ioc/v1/camera/"):
            counts.append(json.loads(message.payload)["metrics"]["vehicle_count"])
    assert counts
    return counts


def test_random_draws_do_not_touch_the_global_generator(fleet: Fleet) -> None:
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    list(Simulation(fleet, seed=9, start=local(2025, 10, 15, 17), scenario="storm").messages(600))
    assert random.random() == expected

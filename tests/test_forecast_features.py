"""forecast.features: the street traits fitted from a sensor's history, wet spells, the traffic profile."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from forecast.features import minutes_since, profile, profile_at, street_traits, trailing_extreme


def _street(gain_cm_per_mm_h: float, capacity_mm_h: float, drain_min: float, minutes: int = 6 * 1440) -> tuple:
    """A street that answers storms as the steady-depth rule says, with a drain lag and sensor noise."""
    rng = np.random.default_rng(3)
    rain = np.zeros(minutes)
    for start in range(300, minutes - 300, 900):
        rain[start : start + 120] = rng.uniform(40, 90) * np.hanning(120)
    level = np.zeros(minutes)
    for i in range(1, minutes):
        steady = gain_cm_per_mm_h * max(0.0, rain[i] - capacity_mm_h)
        level[i] = steady + (level[i - 1] - steady) * np.exp(-1 / drain_min)
    return np.maximum(level + rng.normal(0, 0.3, minutes), 0.0), rain


def test_street_traits_tell_a_deep_street_from_a_shallow_one() -> None:
    shallow = street_traits(*_street(0.2, 25.0, 15.0))
    deep = street_traits(*_street(0.5, 25.0, 15.0))
    assert 1.8 < deep[0] / shallow[0] < 3.2  # the gain: cm of water per mm/h beyond the drains
    assert 10.0 <= deep[1] <= 35.0  # the drains' capacity, on the searched grid
    assert 5.0 < deep[2] < 30.0  # minutes to drain, read from the dry minutes the water fell


def test_a_dry_history_gives_no_traits() -> None:
    assert np.isnan(street_traits(np.zeros(3000), np.zeros(3000))).all()


def test_minutes_since_counts_from_the_start_of_each_spell() -> None:
    flag = np.array([0, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    got = minutes_since(flag)
    assert np.isnan(got[[0, 4, 5]]).all()
    assert got[[1, 2, 3, 6, 7]].tolist() == [0, 1, 2, 0, 1]


def test_profile_is_per_day_type_and_minute_and_wraps_midnight() -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC).timestamp() - 7 * 3600  # Monday 00:00 local (UTC+7)
    epoch = start + 60.0 * np.arange(14 * 1440)
    weekend = ((np.arange(len(epoch)) // 1440) % 7) >= 5
    minute = np.arange(len(epoch)) % 1440
    y = np.where(weekend, 10.0, 40.0) + minute / 100  # weekends slower; a ramp through the day
    table = profile(y, epoch)
    assert table.shape == (2, 1440)
    noon_monday, noon_saturday = start + 12 * 3600, start + 5 * 86400 + 12 * 3600
    assert abs(profile_at(table, np.array([noon_monday]))[0] - (40 + 7.2)) < 0.01
    assert abs(profile_at(table, np.array([noon_saturday]))[0] - (10 + 7.2)) < 0.01
    # Just after midnight the window reaches back into the evening before: smoothed across the day's edge.
    assert table[0, 0] > 40 + 0 / 100 + 1


def test_trailing_extreme_matches_the_window_by_definition() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    y[rng.random(500) < 0.3] = np.nan
    for window in (1, 2, 15, 60, 61, 745):
        for fn, pick in (("max", np.nanmax), ("min", np.nanmin)):
            got = trailing_extreme(y, window, fn)
            for i in range(len(y)):
                part = y[max(0, i - window + 1) : i + 1]
                want = pick(part) if np.isfinite(part).any() else np.nan
                assert got[i] == want or (np.isnan(got[i]) and np.isnan(want)), (window, fn, i)

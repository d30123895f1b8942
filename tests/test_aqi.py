"""ioc.aqi (VN_AQI, Decision 1459/QĐ-TCMT) and ioc.aqi_us (US EPA view): the Decision's worked examples
(its section 2.3), every breakpoint edge, the NowCast's data rules, the bands and their advice."""

from __future__ import annotations

import math

import pytest

from ioc import aqi, aqi_us

# 2.3.a: PM2.5 hourly means from 09:00 to 20:00; the NowCast wants them newest first.
EXAMPLE_PM25 = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]
# 2.2.2.a: O3 hourly means from 18:00 the day before to 00:00; the day runs 01:00 to 00:00.
EXAMPLE_O3 = [
    15.7,
    14.2,
    17.7,
    18.9,
    19.3,
    15.7,
    19.7,
    22.6,
    27.1,
    29.0,
    31.9,
    25.3,
    34.7,
    35.2,
    41.6,
    45.7,
    49.2,
    55.8,
    69.6,
    78.3,
    91.5,
    97.7,
    81.2,
    71.8,
    43.5,
    34.3,
    21.5,
    20.5,
    19.4,
    20.4,
    21.3,
]


# ---------------------------------------------------------------- the Decision's worked examples


def test_nowcast_example_is_20_3() -> None:
    assert aqi.nowcast(list(reversed(EXAMPLE_PM25))) == 20.3


def test_hourly_example_is_60_from_43_60_41() -> None:
    """2.3.b: O3 136.1, NO2 118.7, PM2.5 NowCast 20.3 -> 43 / 60 / 41, AQI 60 (NO2)."""
    index = aqi.hourly_index({"o3": [136.1], "no2": [118.7], "pm25": list(reversed(EXAMPLE_PM25))})
    assert index.sub == {"pm25": 41, "o3": 43, "no2": 60}
    assert (index.aqi, index.dominant) == (60, "no2")
    assert index.concentrations["pm25"] == 20.3
    assert index.band is not None and index.band.key == "moderate"


def test_daily_example_is_110_from_45_36_65_110() -> None:
    """2.3.c: O3 8 h max 89.3, O3 1 h max 114.6, NO2 1 h max 130.8, PM2.5 24 h 55.7 -> AQI 110 (PM2.5).

    The printed NO2 sub-index is 65; rounding up (our rule) gives 66, from 65.4.
    """
    parts = aqi.daily_parts({"o3_8h": 89.3, "o3_1h": 114.6, "no2": 130.8, "pm25": 55.7})
    assert parts == {"o3_8h": 45, "o3_1h": 36, "no2": 66, "pm25": 110}
    assert aqi.exact_sub_index("no2", 130.8) == pytest.approx(65.4)
    index = aqi.daily_index({"o3_8h": 89.3, "o3_1h": 114.6, "no2": 130.8, "pm25": 55.7})
    assert (index.aqi, index.dominant, index.sub["o3"]) == (110, "pm25", 45)


def test_eight_hour_example_max_is_74_4() -> None:
    """2.2.2.a: the day's 8-hour means reach back 7 hours into the day before; the highest is 74.4."""
    before, day = EXAMPLE_O3[:7], EXAMPLE_O3[7:]
    assert len(day) == 24
    assert round(aqi.eight_hour_max(day, before) or 0, 1) == 74.4
    conc = aqi.daily_concentrations({"o3": day}, before)
    assert conc["o3_1h"] == 97.7 and round(conc["o3_8h"], 1) == 74.4


# ---------------------------------------------------------------- sub-indices and every breakpoint edge

EDGES = [(table, i, bp) for table, points in aqi.BREAKPOINTS.items() for i, bp in enumerate(points)]


@pytest.mark.parametrize(("table", "i", "bp"), EDGES, ids=[f"{t}-{bp:g}" for t, _, bp in EDGES])
def test_every_breakpoint_edge(table: str, i: int, bp: float) -> None:
    """At a breakpoint the index is its level; just above it the next integer (the next band at 50, 100...)."""
    assert aqi.sub_index(table, bp) == aqi.LEVELS[i]
    above = aqi.sub_index(table, bp + 0.01)
    if i + 1 < len(aqi.BREAKPOINTS[table]):
        assert above == aqi.LEVELS[i] + 1
        if aqi.LEVELS[i] in (50, 100, 150, 200, 300):  # the band edges (300-500 is one band)
            assert aqi.band(above).key != aqi.band(aqi.LEVELS[i]).key
    if i > 0:
        assert aqi.sub_index(table, bp - 0.01) == aqi.LEVELS[i]  # rounded up into the lower segment's top


@pytest.mark.parametrize(("table", "concentration"), [("pm25", 500), ("pm25", 900), ("co", 150_000), ("no2", 1e6)])
def test_at_and_above_the_last_breakpoint_is_500(table: str, concentration: float) -> None:
    assert aqi.sub_index(table, concentration) == 500


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_bad_concentrations_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="pm25: concentration must be a finite number >= 0"):
        aqi.sub_index("pm25", bad)


@pytest.mark.parametrize(
    ("value", "expected"), [(42.53125, 43), (59.35, 60), (40.6, 41), (109.5, 110), (50.0, 50), (50.0000000001, 50)]
)
def test_rounding_is_up_ignoring_float_noise(value: float, expected: int) -> None:
    assert aqi.round_index(value) == expected


# ---------------------------------------------------------------- NowCast data rules


def test_nowcast_needs_two_of_the_latest_three_hours() -> None:
    full = list(reversed(EXAMPLE_PM25))
    assert aqi.nowcast([None, None, *full[2:]]) is None
    assert aqi.nowcast([full[0], None, None, *full[3:]]) is None
    assert aqi.nowcast([None, *full[1:]]) is not None
    assert aqi.nowcast([]) is None


def test_nowcast_with_w_half_uses_the_decisions_power_series() -> None:
    """w* = 10/100 <= 0.5: NowCast = sum of 0.5^i c_i, i = 1..12 (not normalised)."""
    hours = [100.0, 10.0] + [10.0] * 10
    expected = sum(0.5 ** (i + 1) * c for i, c in enumerate(hours))
    assert aqi.nowcast(hours) == round(expected, 1) == 55.0


def test_nowcast_missing_hours_have_no_weight() -> None:
    """A missing hour is left out (weight 0), not read as 0 µg/m3."""
    assert aqi.nowcast([30.0, 30.0, None, 30.0] + [None] * 8) == 30.0
    assert aqi.nowcast([40.0, 10.0, None] + [None] * 9) == pytest.approx(40 * 0.5 / 0.75 + 10 * 0.25 / 0.75, abs=0.05)


def test_nowcast_of_clean_air_is_zero() -> None:
    assert aqi.nowcast([0.0] * 12) == 0.0


# ---------------------------------------------------------------- the index


def test_index_needs_pm() -> None:
    index = aqi.hourly_index({"no2": [150.0], "o3": [100.0]})
    assert index.aqi is None and index.dominant is None and index.sub == {"no2": 75, "o3": 32}
    assert aqi.hourly_index({"pm10": [60.0, 60.0]}).aqi == 55


def test_ties_go_to_pm25() -> None:
    index = aqi.hourly_index({"pm10": [50.0] * 3, "pm25": [25.0] * 3})
    assert (index.aqi, index.dominant) == (50, "pm25")


def test_o3_8h_above_400_uses_the_1h_maximum_alone() -> None:
    assert aqi.daily_index({"pm25": 10.0, "o3_1h": 500.0, "o3_8h": 410.0}).sub["o3"] == 225
    assert aqi.daily_index({"pm25": 10.0, "o3_1h": 150.0, "o3_8h": 180.0}).sub["o3"] == 163


def test_a_daily_mean_needs_18_hours() -> None:
    assert "pm25" not in aqi.daily_concentrations({"pm25": [30.0] * 17 + [None] * 7})
    assert aqi.daily_concentrations({"pm25": [30.0] * 18 + [None] * 6})["pm25"] == 30.0


# ---------------------------------------------------------------- bands and advice


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (0, "good"),
        (50, "good"),
        (51, "moderate"),
        (100, "moderate"),
        (101, "poor"),
        (150, "poor"),
        (151, "bad"),
        (200, "bad"),
        (201, "very_bad"),
        (300, "very_bad"),
        (301, "hazardous"),
        (500, "hazardous"),
        (600, "hazardous"),
    ],
)
def test_bands(value: int, key: str) -> None:
    assert aqi.band(value).key == key


def test_bands_carry_the_decisions_colours_and_advice_in_both_languages() -> None:
    assert [b.colour for b in aqi.BANDS] == ["#00e400", "#ffff00", "#ff7e00", "#ff0000", "#8f3f97", "#7e0023"]
    assert [b.label["vi"] for b in aqi.BANDS] == ["Tốt", "Trung bình", "Kém", "Xấu", "Rất xấu", "Nguy hại"]
    for b in aqi.BANDS:
        d = b.as_dict()
        for text in (d["label"], d["health"], d["advice"]["general"], d["advice"]["sensitive"]):
            assert set(text) == {"vi", "en"} and all(text.values())
    assert [b.high + 1 for b in aqi.BANDS[:-1]] == [b.low for b in aqi.BANDS[1:]]


# ---------------------------------------------------------------- US EPA (secondary view)


@pytest.mark.parametrize(
    ("pollutant", "concentration", "expected"),
    [
        ("pm25", 9.0, 50),
        ("pm25", 9.1, 51),
        ("pm25", 9.09, 50),
        ("pm25", 35.4, 100),
        ("pm25", 35.5, 101),
        ("pm25", 55.4, 150),
        ("pm25", 55.5, 151),
        ("pm25", 125.4, 200),
        ("pm25", 125.5, 201),
        ("pm25", 225.4, 300),
        ("pm25", 225.5, 301),
        ("pm25", 325.4, 500),
        ("pm25", 600.0, 500),
        ("pm10", 54.9, 50),
        ("pm10", 55, 51),
        ("pm10", 155, 101),
        ("pm10", 425, 301),
        ("no2", 100 / aqi_us.NO2_PPB_PER_UGM3, 100),
    ],
)
def test_us_epa_2024_breakpoints(pollutant: str, concentration: float, expected: int) -> None:
    assert aqi_us.sub_index(pollutant, concentration) == expected


def test_us_epa_view_of_the_hourly_example() -> None:
    """The same hour on the US scale: PM2.5 NowCast 20.3 is 72 (Moderate); NO2 118.7 µg/m3 = 63 ppb is 61."""
    index = aqi_us.hourly_index({"no2": [118.7], "pm25": list(reversed(EXAMPLE_PM25))})
    assert index.sub == {"pm25": 72, "no2": 61} and index.aqi == 72
    assert aqi_us.category(72) == "moderate" and aqi_us.category(101) == "usg"

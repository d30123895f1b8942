"""The US EPA AQI, shown beside VN_AQI as a secondary, labelled view: pure functions, no I/O.

Scales of the EPA's Technical Assistance Document for the AQI (2024 edition), with the PM2.5
breakpoints of the 2024 standard (Good up to 9.0 µg/m3; Hazardous 225.5 and up, one 301-500 segment).
Covered: PM2.5 and PM10 (NowCast hourly, as AirNow reports them, or 24-hour means) and NO2 (1-hour, in
ppb at 25 °C). O3, SO2 and CO are left out: their US scales need 8-hour or 24-hour averages the
hourly view does not have. Concentrations are truncated as the EPA says (PM2.5 to 0.1 µg/m3, PM10 and
NO2 to integers), indices rounded to the nearest integer, anything above the scale is 500.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ioc.aqi import Index, nowcast

POLLUTANTS = ("pm25", "pm10", "no2")
NO2_PPB_PER_UGM3 = 24.45 / 46.0055  # molar volume at 25 °C and 1 atm over NO2's molar mass
# (concentration low, high, index low, high) per segment; PM in µg/m3, NO2 in ppb.
SCALES: dict[str, tuple[tuple[float, float, int, int], ...]] = {
    "pm25": (
        (0.0, 9.0, 0, 50),
        (9.1, 35.4, 51, 100),
        (35.5, 55.4, 101, 150),
        (55.5, 125.4, 151, 200),
        (125.5, 225.4, 201, 300),
        (225.5, 325.4, 301, 500),
    ),
    "pm10": (
        (0, 54, 0, 50),
        (55, 154, 51, 100),
        (155, 254, 101, 150),
        (255, 354, 151, 200),
        (355, 424, 201, 300),
        (425, 604, 301, 500),
    ),
    "no2": (
        (0, 53, 0, 50),
        (54, 100, 51, 100),
        (101, 360, 101, 150),
        (361, 649, 151, 200),
        (650, 1249, 201, 300),
        (1250, 2049, 301, 500),
    ),
}
DECIMALS = {"pm25": 1, "pm10": 0, "no2": 0}
# The EPA's categories: the same six colours as VN_AQI, other names.
CATEGORIES: tuple[tuple[str, int, int, str, Mapping[str, str]], ...] = (
    ("good", 0, 50, "#00e400", {"vi": "Tốt", "en": "Good"}),
    ("moderate", 51, 100, "#ffff00", {"vi": "Trung bình", "en": "Moderate"}),
    ("usg", 101, 150, "#ff7e00", {"vi": "Có hại cho nhóm nhạy cảm", "en": "Unhealthy for sensitive groups"}),
    ("unhealthy", 151, 200, "#ff0000", {"vi": "Có hại cho sức khỏe", "en": "Unhealthy"}),
    ("very_unhealthy", 201, 300, "#8f3f97", {"vi": "Rất có hại", "en": "Very unhealthy"}),
    ("hazardous", 301, 500, "#7e0023", {"vi": "Nguy hiểm", "en": "Hazardous"}),
)


def _truncate(value: float, decimals: int) -> float:
    scale = 10**decimals
    return math.floor(round(value * scale, 6)) / scale


def sub_index(pollutant: str, concentration: float) -> int:
    """The EPA sub-index of a concentration (PM in µg/m3, NO2 in µg/m3 converted to ppb here)."""
    if not math.isfinite(concentration) or concentration < 0:
        raise ValueError(f"{pollutant}: concentration must be a finite number >= 0, not {concentration!r}")
    value = concentration * NO2_PPB_PER_UGM3 if pollutant == "no2" else concentration
    c = _truncate(value, DECIMALS[pollutant])
    for low, high, i_low, i_high in SCALES[pollutant]:
        if c <= high:
            exact = (i_high - i_low) / (high - low) * (max(c, low) - low) + i_low
            return math.floor(exact + 0.5)
    return 500


def category(aqi: int) -> str:
    """The EPA category key of an index."""
    return next((key for key, _, high, _, _ in CATEGORIES if aqi <= high), CATEGORIES[-1][0])


def hourly_index(hours: Mapping[str, Sequence[float | None]]) -> Index:
    """The EPA's hourly view: NowCast for PM2.5 and PM10, the latest hour for NO2 (hourly means, newest first)."""
    sub: dict[str, int] = {}
    used: dict[str, float] = {}
    for pollutant in POLLUTANTS:
        series = hours.get(pollutant) or ()
        value = nowcast(series) if pollutant != "no2" else (series[0] if series else None)
        if value is None or not math.isfinite(value):
            continue
        used[pollutant] = value
        sub[pollutant] = sub_index(pollutant, value)
    if not sub:
        return Index(None, None, sub, used)
    dominant = max((p for p in POLLUTANTS if p in sub), key=lambda p: sub[p])
    return Index(sub[dominant], dominant, sub, used)


def meta() -> dict[str, Any]:
    """The secondary scale for the browser, labelled as the US EPA's."""
    return {
        "index": "US EPA AQI (2024)",
        "pollutants": list(POLLUTANTS),
        "bands": [
            {"key": k, "low": lo, "high": hi, "colour": c, "label": dict(label)} for k, lo, hi, c, label in CATEGORIES
        ],
    }

"""VN_AQI, Vietnam's air-quality index (Decision 1459/QĐ-TCMT of 12 Nov 2019): pure functions, no I/O.

The Decision in short (its section numbers):

- 2.2.1 hourly index: PM2.5 and PM10 from the NowCast of the latest 12 hourly means, O3 (1-hour table),
  NO2, SO2 and CO from the current hourly mean.
- 2.2.2 daily index: PM2.5 and PM10 from the 24-hour mean (01:00 to 00:00), O3 from the higher of the
  day's highest hourly mean (1-hour table) and highest 8-hour mean (8-hour table, ignored when above
  400 µg/m3), NO2, SO2 and CO from the day's highest hourly mean.
- A sub-index is the linear interpolation between the breakpoints of Table 2; the index is the highest
  sub-index, and it needs PM2.5 or PM10 (2.1.b). All concentrations are in µg/m3, CO included.

Rounding, which the Decision leaves to "rounded to an integer" and whose worked examples (2.3) no single
rule reproduces: a sub-index is rounded UP to the next integer (``math.ceil``). It reproduces both printed
indices (hourly 60, daily 110) and every printed sub-index but one: the daily NO2 sub-index of 130.8 µg/m3
is 65.4, printed 65, and rounded up here to 66. Rounding half-up would reproduce that 65 but turn the
hourly NO2 59.35 (printed 60) and so the hourly index itself into 59. Rounding up also keeps the band of
the index that of the concentration: anything above a breakpoint (25.01 µg/m3 of PM2.5) is in the next band.

Our readings where the Decision is silent (docs/air-quality.md lists them): w* uses the unrounded Cmin/Cmax;
the NowCast is rounded to 0.1 µg/m3 before its sub-index (as printed, 20.3); with w = 1/2 the Decision's
unnormalised sum of (1/2)^i c_i is used as written when all 12 hours are present, and rescaled to the
weights present when some are missing (the literal sum would read every missing hour as 0 µg/m3); a
concentration at or above the last breakpoint has sub-index 500; a 24-hour mean needs 18 of its 24 hours
and an 8-hour mean 6 of its 8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

POLLUTANTS = ("pm25", "pm10", "o3", "no2", "so2", "co")  # ties between sub-indices go to the first
PM = ("pm25", "pm10")
METRICS = {p: f"{p}_ugm3" for p in POLLUTANTS}  # the kind `air` metric each pollutant is read from
NAMES = {"pm25": "PM2.5", "pm10": "PM10", "o3": "O₃", "no2": "NO₂", "so2": "SO₂", "co": "CO"}

# Table 2: index levels I_i and breakpoints BP_i (µg/m3). The 8-hour O3 scale stops at 400 (index 300).
LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)
BREAKPOINTS: dict[str, tuple[float, ...]] = {
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 120, 170, 210, 400),
    "co": (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
    "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
    "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
}
HOURLY_TABLE = {"pm25": "pm25", "pm10": "pm10", "o3": "o3_1h", "no2": "no2", "so2": "so2", "co": "co"}
O3_8H_LIMIT = 400.0  # above it the day's O3 sub-index uses the 1-hour maximum alone (2.2.2.b)
NOWCAST_HOURS = 12
DAY_MIN_HOURS = 18  # of 24, for a 24-hour mean (our rule: the Decision sets none)
EIGHT_H_MIN_HOURS = 6  # of 8, for an 8-hour mean (our rule)


@dataclass(frozen=True)
class Band:
    """One of the six bands of Table 1 with its colour (RGB of the Decision) and Table 4/5 advice."""

    key: str
    low: int
    high: int
    rgb: tuple[int, int, int]
    label: Mapping[str, str]
    health: Mapping[str, str]
    general: Mapping[str, str]  # advice for the general public
    sensitive: Mapping[str, str]  # advice for sensitive groups

    @property
    def colour(self) -> str:
        """The band's colour as #rrggbb."""
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    def as_dict(self) -> dict[str, Any]:
        """The band for ``meta`` and the API."""
        return {
            "key": self.key,
            "low": self.low,
            "high": self.high,
            "colour": self.colour,
            "label": dict(self.label),
            "health": dict(self.health),
            "advice": {"general": dict(self.general), "sensitive": dict(self.sensitive)},
        }


_OUTDOORS_FREE = {"vi": "Tự do hoạt động ngoài trời.", "en": "Enjoy outdoor activities freely."}
_STAY_IN = {
    "vi": "Mọi người nên ở trong nhà, đóng cửa ra vào và cửa sổ. Nếu phải ra ngoài, hãy đeo khẩu trang đạt chuẩn.",
    "en": "Everyone should stay indoors with doors and windows closed; wear a certified mask if you must go out.",
}
BANDS: tuple[Band, ...] = (
    Band(
        "good",
        0,
        50,
        (0, 228, 0),
        {"vi": "Tốt", "en": "Good"},
        {
            "vi": "Chất lượng không khí tốt, không ảnh hưởng tới sức khỏe.",
            "en": "Air quality is good and poses no risk to health.",
        },
        _OUTDOORS_FREE,
        _OUTDOORS_FREE,
    ),
    Band(
        "moderate",
        51,
        100,
        (255, 255, 0),
        {"vi": "Trung bình", "en": "Moderate"},
        {
            "vi": "Chấp nhận được; người nhạy cảm có thể chịu một số tác động tới sức khỏe.",
            "en": "Acceptable; sensitive people may feel some effects on their health.",
        },
        _OUTDOORS_FREE,
        {
            "vi": "Theo dõi các triệu chứng như ho, khó thở; vẫn có thể hoạt động ngoài trời.",
            "en": "Watch for symptoms such as coughing or shortness of breath; outdoor activity is still fine.",
        },
    ),
    Band(
        "poor",
        101,
        150,
        (255, 126, 0),
        {"vi": "Kém", "en": "Poor"},
        {
            "vi": "Người nhạy cảm gặp vấn đề sức khỏe; người bình thường ít bị ảnh hưởng.",
            "en": "Sensitive people have health effects; the general public is less likely to be affected.",
        },
        {
            "vi": "Ai bị đau mắt, ho, đau họng nên giảm hoạt động ngoài trời; học sinh nên giảm tập thể dục kéo dài.",
            "en": "People with sore eyes, a cough or a sore throat should cut outdoor activity; pupils should "
            "avoid prolonged exercise.",
        },
        {
            "vi": "Giảm hoạt động mạnh và thời gian ở ngoài trời; người bị hen có thể cần dùng thuốc thường xuyên hơn.",
            "en": "Reduce strenuous activity and time outdoors; people with asthma may need their medicine more often.",
        },
    ),
    Band(
        "bad",
        151,
        200,
        (255, 0, 0),
        {"vi": "Xấu", "en": "Bad"},
        {
            "vi": "Mọi người bắt đầu bị ảnh hưởng; người nhạy cảm có thể bị ảnh hưởng nghiêm trọng hơn.",
            "en": "Everyone begins to feel effects; sensitive people may have more serious effects.",
        },
        {
            "vi": "Giảm hoạt động mạnh ngoài trời, tránh tập thể dục kéo dài, nghỉ ngơi trong nhà nhiều hơn.",
            "en": "Reduce strenuous outdoor activity, avoid prolonged exercise and rest indoors more.",
        },
        {
            "vi": "Ở trong nhà và giảm hoạt động mạnh; nếu phải ra ngoài, hãy đeo khẩu trang đạt chuẩn.",
            "en": "Stay indoors and reduce strenuous activity; wear a certified mask if you must go out.",
        },
    ),
    Band(
        "very_bad",
        201,
        300,
        (143, 63, 151),
        {"vi": "Rất xấu", "en": "Very bad"},
        {
            "vi": "Cảnh báo sức khỏe: mọi người bị ảnh hưởng nghiêm trọng hơn.",
            "en": "Health warning: everyone may have more serious health effects.",
        },
        {
            "vi": "Hạn chế tối đa hoạt động ngoài trời, chuyển vào trong nhà; ra ngoài hãy đeo khẩu trang đạt chuẩn.",
            "en": "Keep outdoor activity to a minimum and move activities indoors; wear a certified mask outside.",
        },
        {"vi": "Ở trong nhà và giảm hoạt động mạnh.", "en": "Stay indoors and reduce strenuous activity."},
    ),
    Band(
        "hazardous",
        301,
        500,
        (126, 0, 35),
        {"vi": "Nguy hại", "en": "Hazardous"},
        {
            "vi": "Cảnh báo khẩn cấp: toàn bộ dân số bị ảnh hưởng nghiêm trọng tới sức khỏe.",
            "en": "Health emergency: the whole population is seriously affected.",
        },
        _STAY_IN,
        _STAY_IN,
    ),
)
BAND_KEYS = tuple(b.key for b in BANDS)


def band(aqi: int) -> Band:
    """The band of an index (above 500 counts as hazardous)."""
    if aqi < 0:
        raise ValueError(f"an AQI cannot be negative: {aqi}")
    return next((b for b in BANDS if aqi <= b.high), BANDS[-1])


def round_index(value: float) -> int:
    """Round a sub-index up to an integer (our rule, see the module docstring); float noise below 1e-6 ignored."""
    return math.ceil(round(value, 6))


def exact_sub_index(table: str, concentration: float) -> float:
    """The sub-index before rounding: linear between the breakpoints of ``table``, 500 at and above the last."""
    if not math.isfinite(concentration) or concentration < 0:
        raise ValueError(f"{table}: concentration must be a finite number >= 0, not {concentration!r}")
    points = BREAKPOINTS[table]
    for i in range(len(points) - 1):
        low, high = points[i], points[i + 1]
        if concentration <= high:
            return (LEVELS[i + 1] - LEVELS[i]) / (high - low) * (concentration - low) + LEVELS[i]
    return float(LEVELS[-1]) if len(points) == len(LEVELS) else float(LEVELS[len(points) - 1])


def sub_index(table: str, concentration: float) -> int:
    """The rounded sub-index of a concentration (µg/m3) on one of the Decision's scales."""
    return min(round_index(exact_sub_index(table, concentration)), LEVELS[-1])


def _present(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def nowcast(hours: Sequence[float | None]) -> float | None:
    """The NowCast (2.2.1.a) of hourly means, newest first (c1 = the current hour), to 0.1 µg/m3.

    None ("no data") unless at least 2 of the latest 3 hours are present.
    """
    c = list(hours[:NOWCAST_HOURS])
    if sum(_present(x) for x in c[:3]) < 2:
        return None
    present = [(i, float(x)) for i, x in enumerate(c) if x is not None and math.isfinite(x)]
    high = max(v for _, v in present)
    if high <= 0:
        return 0.0
    w_star = min(v for _, v in present) / high
    if w_star > 0.5:
        value = sum(w_star**i * v for i, v in present) / sum(w_star**i for i, _ in present)
    else:  # the Decision's form for w = 1/2: sum of (1/2)^i c_i, i from 1, rescaled when hours are missing
        full = sum(0.5 ** (i + 1) for i in range(NOWCAST_HOURS))
        value = sum(0.5 ** (i + 1) * v for i, v in present) * full / sum(0.5 ** (i + 1) for i, _ in present)
    return round(value, 1)


@dataclass(frozen=True)
class Index:
    """An index: the highest sub-index, its pollutant, every sub-index and the concentration each came from."""

    aqi: int | None
    dominant: str | None
    sub: dict[str, int] = field(default_factory=dict)
    concentrations: dict[str, float] = field(default_factory=dict)

    @property
    def band(self) -> Band | None:
        """The index's band (None without an index)."""
        return None if self.aqi is None else band(self.aqi)


def combine(sub: Mapping[str, int], concentrations: Mapping[str, float]) -> Index:
    """The index from sub-indices: their maximum, None without PM2.5 or PM10 (2.1.b)."""
    if not any(p in sub for p in PM):
        return Index(None, None, dict(sub), dict(concentrations))
    dominant = max((p for p in POLLUTANTS if p in sub), key=lambda p: sub[p])
    return Index(sub[dominant], dominant, dict(sub), dict(concentrations))


def hourly_index(hours: Mapping[str, Sequence[float | None]]) -> Index:
    """The hourly index (2.2.1) from each pollutant's hourly means, newest first (missing hours None)."""
    sub: dict[str, int] = {}
    used: dict[str, float] = {}
    for pollutant in POLLUTANTS:
        series = hours.get(pollutant) or ()
        value = nowcast(series) if pollutant in PM else (series[0] if series else None)
        if value is None or not math.isfinite(value):
            continue
        used[pollutant] = value
        sub[pollutant] = sub_index(HOURLY_TABLE[pollutant], value)
    return combine(sub, used)


def _mean(values: Sequence[float | None], least: int) -> float | None:
    present = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(present) / len(present) if len(present) >= least else None


def eight_hour_max(hours: Sequence[float | None], before: Sequence[float | None] = ()) -> float | None:
    """The day's highest 8-hour mean: one per hour of ``hours`` (oldest first), each over that hour and the
    7 before it, the first ones reaching into ``before`` (the 7 hours before the day, oldest first)."""
    series = [*before[-7:], *hours]
    start = len(series) - len(hours)
    means = [
        m
        for end in range(max(start, 7), len(series))
        if (m := _mean(series[end - 7 : end + 1], EIGHT_H_MIN_HOURS)) is not None
    ]
    return max(means) if means else None


def daily_concentrations(
    day: Mapping[str, Sequence[float | None]], o3_before: Sequence[float | None] = ()
) -> dict[str, float]:
    """The concentrations a daily index uses (2.2.2.a) from the day's hourly means (oldest first)."""
    out: dict[str, float] = {}
    for pollutant in POLLUTANTS:
        hours = day.get(pollutant) or ()
        present = [float(v) for v in hours if v is not None and math.isfinite(v)]
        if pollutant in PM:
            value = _mean(hours, DAY_MIN_HOURS)
            if value is not None:
                out[pollutant] = value
        elif pollutant == "o3":
            if present:
                out["o3_1h"] = max(present)
            eight = eight_hour_max(hours, o3_before)
            if eight is not None:
                out["o3_8h"] = eight
        elif present:
            out[pollutant] = max(present)
    return out


def daily_parts(concentrations: Mapping[str, float]) -> dict[str, int]:
    """Each daily sub-index, O3 as its two parts ``o3_1h`` and ``o3_8h`` (the 8-hour one only up to 400 µg/m3)."""
    parts: dict[str, int] = {}
    for key, value in concentrations.items():
        if key == "o3_8h" and value > O3_8H_LIMIT:
            continue
        parts[key] = sub_index(key, value)
    return parts


def daily_index(concentrations: Mapping[str, float]) -> Index:
    """The daily index (2.2.2) from ``daily_concentrations`` (keys pm25, pm10, o3_1h, o3_8h, no2, so2, co)."""
    parts = daily_parts(concentrations)
    sub = {p: parts[p] for p in POLLUTANTS if p in parts}
    o3 = [parts[k] for k in ("o3_1h", "o3_8h") if k in parts]
    if o3:
        sub["o3"] = max(o3)
    return combine(sub, concentrations)


def meta() -> dict[str, Any]:
    """The scale as the browser needs it: bands, colours, advice, pollutant names."""
    return {
        "index": "VN_AQI",
        "bands": [b.as_dict() for b in BANDS],
        "pollutants": [{"key": p, "name": NAMES[p], "metric": METRICS[p]} for p in POLLUTANTS],
    }

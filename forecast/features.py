"""Features of the learned models: pure numpy over a ``Grid``, per device and forecast origin.

``last`` is the index of the newest complete minute at the origin (the origin is the end of that
minute); a horizon ``h`` targets the minute ``last + h``. Every feature reads indices <= ``last`` only
(``tests/test_forecast_future.py`` proves it by altering everything later), except the tide prediction,
which is a function of time, not of data.
"""

from __future__ import annotations

import math

import numpy as np

from forecast.data import Device, Grid
from forecast.tide import TideModel

LOCAL_OFFSET_S = 7 * 3600  # Asia/Ho_Chi_Minh: UTC+7 all year (no daylight saving)
M2_MIN = 745  # one M2 tidal period (12.42 h) in minutes: the same phase of the previous tide
WEEK_MIN = 7 * 1440
SLOT_MIN = 15
RAIN_RINGS_KM = ((0.0, 3.0), (3.0, 8.0), (8.0, 15.0), (15.0, 25.0))
TRAFFIC_FLOOD_KM = 1.5

FLOOD_FEATURES = (
    "level", "d1", "d5", "d15", "d30", "d60", "max60", "min60",
    "rain", "rain15", "rain60", "rain_max30", "rain_d15", "rain180",
    *(f"ring{i}_{what}" for i in range(len(RAIN_RINGS_KM)) for what in ("now", "mean15", "d15", "max", "max60")),
    "wet_min", "net_max", "net_max_d15", "net_storm",
    "gain", "capacity", "drain_min", "steady_now", "steady_peak",
    "tide_now", "tide_target", "tide_max", "tide_d",
    "m2_target", "m2_now", "hour_sin", "hour_cos",
)  # fmt: skip
TRAFFIC_FEATURES = (
    "value", "mean5", "mean15", "mean60", "hist_target", "hist_now", "dev5", "dev15", "dev60",
    "profile_target", "profile_now", "pdev5", "pdev15", "pdev60",
    "snaive_week", "snaive_day", "other_dev15", "flood_near", "rain_near",
    "hour_sin", "hour_cos", "weekend",
)  # fmt: skip


def distance_km(a: Device, b: Device) -> float:
    """Great-circle distance between two devices (equirectangular: the city is small)."""
    dy = (a.lat - b.lat) * 111.32
    dx = (a.lon - b.lon) * 111.32 * math.cos(math.radians((a.lat + b.lat) / 2))
    return math.hypot(dx, dy)


def ffill(y: np.ndarray, limit: int = 10) -> np.ndarray:
    """Forward-fill NaN gaps of at most ``limit`` minutes (a device that misses a reading or two)."""
    n = len(y)
    idx = np.where(np.isfinite(y), np.arange(n), -1)
    np.maximum.accumulate(idx, out=idx)
    out = np.where(idx >= 0, y[np.maximum(idx, 0)], np.nan)
    stale = np.arange(n) - idx > limit
    out[stale] = np.nan
    out[np.isfinite(y)] = y[np.isfinite(y)]
    return out


def trailing_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values of the ``window`` minutes ending at each index (NaN when none)."""
    finite = np.isfinite(y)
    s = np.concatenate(([0.0], np.cumsum(np.where(finite, y, 0.0))))
    c = np.concatenate(([0], np.cumsum(finite)))
    hi = np.arange(1, len(y) + 1)
    lo = np.maximum(hi - window, 0)
    count = c[hi] - c[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (s[hi] - s[lo]) / np.maximum(count, 1), np.nan)


def _shift(a: np.ndarray, k: int, fill: float) -> np.ndarray:
    """``a`` delayed by ``k`` places, ``fill`` in front."""
    if k >= len(a):
        return np.full(len(a), fill)
    return np.concatenate((np.full(k, fill), a[: len(a) - k]))


def trailing_extreme(y: np.ndarray, window: int, fn: str) -> np.ndarray:
    """Max or min (``fn``) of the ``window`` minutes ending at each index, ignoring NaN.

    By doubling spans (log2(window) passes, not a window-wide view per minute: inference builds these over
    a week of minutes for every sensor each round)."""
    fill = -np.inf if fn == "max" else np.inf
    op = np.maximum if fn == "max" else np.minimum
    out = np.where(np.isfinite(y), y, fill)
    span = 1
    while span * 2 <= window:
        out = op(out, _shift(out, span, fill))
        span *= 2
    if span < window:  # the last span's start: [i - window + 1, i - span] joined to [i - span + 1, i]
        out = op(out, _shift(out, window - span, fill))
    return np.where(np.isfinite(out), out, np.nan)


def at(y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``y[idx]`` with NaN where ``idx`` is outside the array."""
    ok = (idx >= 0) & (idx < len(y))
    return np.where(ok, y[np.clip(idx, 0, len(y) - 1)], np.nan)


def column_mean(stack: np.ndarray) -> np.ndarray:
    """Mean over rows of the finite values in each column (NaN where none)."""
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    return np.where(count > 0, np.where(finite, stack, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)


def column_max(stack: np.ndarray) -> np.ndarray:
    """Max over rows of the finite values in each column (NaN where none)."""
    peak = np.where(np.isfinite(stack), stack, -np.inf).max(axis=0)
    return np.where(np.isfinite(peak), peak, np.nan)


def local_hour(epoch: np.ndarray) -> np.ndarray:
    """Local hour of day (float) at epoch seconds."""
    return ((epoch + LOCAL_OFFSET_S) % 86400) / 3600.0


def local_weekday(epoch: np.ndarray) -> np.ndarray:
    """Local weekday, Monday 0 (1970-01-01 was a Thursday)."""
    return ((np.floor((epoch + LOCAL_OFFSET_S) / 86400) + 3) % 7).astype(int)


WET_MM_H = 1.0  # rain at or above this at the sensor or within 8 km: a wet spell has begun
STORM_MM_H = 20.0  # a gauge raining this hard counts in the storm's size


def minutes_since(flag: np.ndarray, cap: int = 240) -> np.ndarray:
    """Minutes since the current run of True in ``flag`` began (0 at its first minute, NaN outside a run)."""
    idx = np.arange(len(flag))
    begun = np.where(flag & ~np.concatenate(([False], flag[:-1])), idx, -1)
    np.maximum.accumulate(begun, out=begun)
    return np.where(flag & (begun >= 0), np.minimum(idx - begun, cap), np.nan)


def network_rain(grid: Grid, gauges: list[Device]) -> dict[str, np.ndarray]:
    """City-wide rain per minute: the heaviest gauge, its change over 15 minutes, how many gauges pour."""
    stack = np.vstack([ffill(grid.get(g.device_id, "rainfall_mm_h")) for g in gauges]) if gauges else None
    if stack is None:
        empty = np.full(grid.minutes, np.nan)
        return {"max": empty, "storm": empty}
    return {"max": column_max(stack), "storm": (np.nan_to_num(stack) >= STORM_MM_H).sum(axis=0).astype(float)}


def rain_rings(device: Device, others: list[Device]) -> list[list[str]]:
    """Flood sensors (their rain gauges) in each ring of RAIN_RINGS_KM around ``device``, itself excluded."""
    rings: list[list[str]] = [[] for _ in RAIN_RINGS_KM]
    for other in others:
        if other.device_id == device.device_id:
            continue
        d = distance_km(device, other)
        for i, (lo, hi) in enumerate(RAIN_RINGS_KM):
            if lo <= d < hi:
                rings[i].append(other.device_id)
    return rings


TRAITS = ("gain", "capacity", "drain_min")
CAPACITIES_MM_H = np.arange(10.0, 50.0, 2.5)


def street_traits(level: np.ndarray, rain: np.ndarray) -> np.ndarray:
    """How a street answers rain, fitted on its history: (cm of water per mm/h beyond the drains, the drains'
    capacity in mm/h, minutes the water takes to drain); NaN where the history cannot tell.

    The steady depth under rain r is about ``gain * max(0, r - capacity)`` (least squares over the minutes
    it rained, capacity searched on a grid); draining is read from the dry minutes the water fell.
    """
    out = np.full(len(TRAITS), np.nan)
    r = trailing_mean(rain, 15)
    ok = np.isfinite(level) & np.isfinite(r) & (r > 0)
    y, r = level[ok], r[ok]
    best = np.inf
    for c in CAPACITIES_MM_H:
        x = np.maximum(0.0, r - c)
        if np.count_nonzero(x) < 20:
            continue
        a = float((x * y).sum() / (x * x).sum())
        sse = float(((y - a * x) ** 2).sum())
        if sse < best:
            best, out[0], out[1] = sse, a, c
    # Draining: the level 10 minutes later over the level now, where it fell from over 3 cm while the rain
    # stayed below what the drains take (no inflow: the level decays at the drain's own rate).
    later = np.concatenate((level[10:], np.full(10, np.nan)))
    rain10 = trailing_mean(rain, 10)
    rain_later = np.concatenate((rain10[10:], np.full(10, np.nan)))
    under = np.nan_to_num(out[1], nan=0.0)
    dry = (level > 3.0) & (later < level) & (rain10 <= under) & (rain_later <= under)
    if np.count_nonzero(dry) >= 20:
        ratio = float(np.median(later[dry] / level[dry]))
        out[2] = -10.0 / np.log(ratio) if 0 < ratio < 1 else np.nan
    return out


class FloodSeries:
    """One flood sensor's derived minute series (computed once, then indexed per origin)."""

    def __init__(
        self, grid: Grid, device: Device, rings: list[list[str]], tide: TideModel, network: dict[str, np.ndarray]
    ) -> None:
        level = ffill(grid.get(device.device_id, "water_level_cm"))
        rain = ffill(grid.get(device.device_id, "rainfall_mm_h"))
        self.level = level
        self.max60 = trailing_extreme(level, 60, "max")
        self.min60 = trailing_extreme(level, 60, "min")
        self.rain = rain
        self.rain15 = trailing_mean(rain, 15)
        self.rain60 = trailing_mean(rain, 60)
        self.rain180 = trailing_mean(rain, 180)
        self.rain_max30 = trailing_extreme(rain, 30, "max")
        self.rings = []
        for members in rings:
            if members:
                stack = np.vstack([ffill(grid.get(m, "rainfall_mm_h")) for m in members])
                mean, peak = column_mean(stack), column_max(stack)
            else:
                mean = peak = np.full(grid.minutes, np.nan)
            self.rings.append((mean, trailing_mean(mean, 15), peak, trailing_extreme(peak, 60, "max")))
        near = np.fmax(rain, np.fmax(self.rings[0][2], self.rings[1][2]))
        self.wet_min = minutes_since(np.nan_to_num(near) >= WET_MM_H)
        self.near_peak60 = trailing_extreme(near, 60, "max")
        self.traits = np.full(len(TRAITS), np.nan)  # set by the model: fitted on its training history
        self.network = network
        # The tide on a minute axis reaching 120 minutes past the grid (targets of the newest origins).
        self.tide = tide.level_m(grid.start.timestamp() + 60.0 * np.arange(grid.minutes + 121))
        self.tide_max: dict[int, np.ndarray] = {}
        self.epoch = grid.epoch()

    def matrix(self, last: np.ndarray, h: int) -> np.ndarray:
        """Feature rows (FLOOD_FEATURES) for origins ending at minutes ``last``, horizon ``h`` minutes."""
        lv = at(self.level, last)
        target = last + h
        cols = [
            lv,
            lv - at(self.level, last - 1),
            lv - at(self.level, last - 5),
            lv - at(self.level, last - 15),
            lv - at(self.level, last - 30),
            lv - at(self.level, last - 60),
            at(self.max60, last),
            at(self.min60, last),
            at(self.rain, last),
            at(self.rain15, last),
            at(self.rain60, last),
            at(self.rain_max30, last),
            at(self.rain, last) - at(self.rain, last - 15),
            at(self.rain180, last),
        ]
        for mean, mean15, peak, peak60 in self.rings:
            now = at(mean, last)
            cols += [now, at(mean15, last), now - at(mean, last - 15), at(peak, last), at(peak60, last)]
        net = at(self.network["max"], last)
        cols += [at(self.wet_min, last), net, net - at(self.network["max"], last - 15), at(self.network["storm"], last)]
        gain, capacity, drain = self.traits
        cols += [np.full(len(last), v) for v in self.traits]
        cols += [gain * np.maximum(0.0, at(self.rain15, last) - capacity)]
        cols += [gain * np.maximum(0.0, at(self.near_peak60, last) - capacity)]
        if h not in self.tide_max:
            self.tide_max[h] = trailing_extreme(self.tide, h, "max")
        cols += [
            at(self.tide, last),
            at(self.tide, target),
            at(self.tide_max[h], target),
            at(self.tide, target) - at(self.tide, last),
            at(self.level, target - M2_MIN),
            at(self.level, last - M2_MIN),
        ]
        hour = local_hour(at(self.epoch, last) + 60.0)
        cols += [np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)]
        return np.column_stack(cols)


def history_average(y: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """Mean of ``y`` per local weekday and 15-minute slot, shape (7, 96); NaN where never seen.

    A slot never seen on its weekday falls back to the same slot on any day, then to the overall mean.
    """
    slots = 1440 // SLOT_MIN
    ok = np.isfinite(y)
    weekday = local_weekday(epoch[ok])
    slot = (local_hour(epoch[ok]) * 60 // SLOT_MIN).astype(int)
    key = weekday * slots + slot
    total = np.bincount(key, weights=y[ok], minlength=7 * slots)
    count = np.bincount(key, minlength=7 * slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = (total / count).reshape(7, slots)
        any_day = total.reshape(7, slots).sum(axis=0) / count.reshape(7, slots).sum(axis=0)
    table = np.where(np.isfinite(table), table, any_day[None, :])
    overall = float(np.nanmean(y)) if ok.any() else np.nan
    return np.where(np.isfinite(table), table, overall)


PROFILE_SMOOTH_MIN = 15


def profile(y: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """Mean of ``y`` per day type (weekday, weekend) and minute of the local day, smoothed over
    PROFILE_SMOOTH_MIN minutes, shape (2, 1440): a steadier expectation than one weekday's 15-minute slot."""
    ok = np.isfinite(y)
    key = (local_weekday(epoch[ok]) >= 5).astype(int) * 1440 + (local_hour(epoch[ok]) * 60).astype(int) % 1440
    total = np.bincount(key, weights=y[ok], minlength=2 * 1440).reshape(2, 1440)
    count = np.bincount(key, minlength=2 * 1440).reshape(2, 1440).astype(float)
    kernel = np.ones(PROFILE_SMOOTH_MIN)
    half = PROFILE_SMOOTH_MIN // 2
    # Circular smoothing: midnight's neighbours are the minutes either side of it.
    s, c = (
        np.array([np.convolve(r, kernel, "valid") for r in np.concatenate((a[:, -half:], a, a[:, :half]), axis=1)])
        for a in (total, count)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        table = s / c
    any_type = s.sum(axis=0) / np.maximum(c.sum(axis=0), 1)
    return np.where(np.isfinite(table), table, any_type[None, :])


def profile_at(table: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """``profile`` values at epoch seconds."""
    minute = (local_hour(epoch) * 60).astype(int) % 1440
    return table[(local_weekday(epoch) >= 5).astype(int), minute]


def lookup(table: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """``history_average`` values at epoch seconds."""
    slot = (local_hour(epoch) * 60 // SLOT_MIN).astype(int)
    return table[local_weekday(epoch), slot]


class TrafficSeries:
    """One detector's derived series for one metric (speed or count)."""

    def __init__(
        self, grid: Grid, device: Device, metric: str, other: str, tables: dict[str, np.ndarray], near: list[str]
    ) -> None:
        self.value = ffill(grid.get(device.device_id, metric))
        self.epoch = np.concatenate((grid.epoch(), grid.epoch()[-1:] + 60.0 * np.arange(1, 121)))
        self.hist = lookup(tables[metric], self.epoch)
        self.profile = profile_at(tables[f"profile:{metric}"], self.epoch)
        self.mean5 = trailing_mean(self.value, 5)
        self.mean15 = trailing_mean(self.value, 15)
        self.mean60 = trailing_mean(self.value, 60)
        other_value = ffill(grid.get(device.device_id, other))
        self.other_dev15 = trailing_mean(other_value, 15) - lookup(tables[other], self.epoch[: grid.minutes])
        if near:
            self.flood = column_max(np.vstack([ffill(grid.get(f, "water_level_cm")) for f in near]))
            self.rain = column_mean(np.vstack([ffill(grid.get(f, "rainfall_mm_h")) for f in near]))
        else:
            self.flood = self.rain = np.full(grid.minutes, np.nan)

    def matrix(self, last: np.ndarray, h: int) -> np.ndarray:
        """Feature rows (TRAFFIC_FEATURES) for origins ending at minutes ``last``, horizon ``h`` minutes."""
        target = last + h
        hist_now = at(self.hist, last)
        hour = local_hour(at(self.epoch, target))
        weekday = local_weekday(np.nan_to_num(at(self.epoch, target)))
        return np.column_stack(
            [
                at(self.value, last),
                at(self.mean5, last),
                at(self.mean15, last),
                at(self.mean60, last),
                at(self.hist, target),
                hist_now,
                at(self.mean5, last) - hist_now,
                at(self.mean15, last) - hist_now,
                at(self.mean60, last) - hist_now,
                at(self.profile, target),
                at(self.profile, last),
                at(self.mean5, last) - at(self.profile, last),
                at(self.mean15, last) - at(self.profile, last),
                at(self.mean60, last) - at(self.profile, last),
                at(self.value, target - WEEK_MIN),
                at(self.value, target - 1440),
                at(self.other_dev15, last),
                at(self.flood, last),
                at(self.rain, last),
                np.sin(2 * np.pi * hour / 24),
                np.cos(2 * np.pi * hour / 24),
                (weekday >= 5).astype(float),
            ]
        )

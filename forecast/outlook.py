"""The outlook of one device from its stored forecasts: will it cross a level, when, and how sure are we.

Pure functions (no numpy), shared by the live wall's ``forecast:{zone}`` channels and the alert
engine's ``forecast`` rules, so the wall and the alerts always say the same thing.

A forecast at horizon h is a median ``value`` and an 80 % interval (``lower``, ``upper``: the 10 % and
90 % quantiles). The chance that the level at h is at or past a line L is read from those three
quantiles, linearly between them: 90 % at the lower bound, 50 % at the median, 10 % at the upper bound
(beyond the interval: 95 % / 5 %). A forecast without an interval (persistence) is 50 % when its median
reaches L and 0 % otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """One horizon of a device's forecast."""

    horizon_min: int
    value: float
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Crossing:
    """A predicted crossing of ``limit``: minutes from the forecast's origin and the chance at the horizon."""

    limit: float
    eta_min: int
    probability: float


def chance(point: Point, limit: float, above: bool = True) -> float:
    """The chance (0-1) that the level at ``point`` is at or past ``limit`` (above it, or below when not ``above``)."""
    s = 1.0 if above else -1.0
    value, margin = s * point.value, s * limit
    lower, upper = point.lower, point.upper
    if lower is None or upper is None:
        return 0.5 if value >= margin else 0.0
    # Seen in the direction of travel: ``low`` is passed with 90 % chance, ``high`` with 10 %.
    low, high = (s * lower, s * upper) if above else (s * upper, s * lower)
    if margin <= low:
        return 0.95 if margin < low else 0.9
    if margin <= value:
        return 0.9 - 0.4 * (margin - low) / (value - low) if value > low else 0.5
    if margin <= high:
        return 0.5 - 0.4 * (margin - value) / (high - value) if high > value else 0.1
    return 0.05


def crossing(
    now: float | None, points: list[Point], limit: float, within_min: int, above: bool = True
) -> Crossing | None:
    """The first predicted crossing of ``limit`` within ``within_min`` minutes by the median, or None.

    A device already at or past the limit has no predicted crossing (its reading says so already); the
    time is interpolated linearly between the level now (or the previous horizon) and the first horizon
    whose median reaches the limit; the chance is that of the horizon with the highest chance up to
    ``within_min`` (at least the crossing horizon's).
    """
    s = 1.0 if above else -1.0
    if now is not None and s * now >= s * limit:
        return None
    ordered = sorted((p for p in points if p.horizon_min <= within_min), key=lambda p: p.horizon_min)
    prev_h, prev_v = 0, now
    for p in ordered:
        if s * p.value >= s * limit:
            if prev_v is None or s * p.value == s * prev_v:
                eta = p.horizon_min
            else:
                eta = round(prev_h + (p.horizon_min - prev_h) * (limit - prev_v) / (p.value - prev_v))
            eta = max(1, min(p.horizon_min, eta))
            best = max(chance(q, limit, above) for q in ordered)
            return Crossing(limit, eta, round(best, 2))
        prev_h, prev_v = p.horizon_min, p.value
    return None

"""The reference tide: harmonic prediction from constituents in YAML, refitted from a gauge's levels.

``h(t) = datum + sum A_i cos(w_i (t - 2000-01-01T00:00Z) - g_i)`` with the standard constituent speeds
``w_i`` below. Fitting is ordinary least squares (numpy) over the constituents the record can resolve
(the Rayleigh criterion: two speeds are told apart only by a record longer than one beat period);
the others keep their published values. Nodal (18.6-year) corrections are not applied: a refit from a
recent record absorbs them, and the published constants should be those of the current year.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ioc.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("tide.yaml")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC).timestamp()

# Standard speeds in degrees per hour (Schureman), in the order a fit admits them.
SPEEDS_DEG_H: dict[str, float] = {
    "M2": 28.9841042,
    "S2": 30.0,
    "K1": 15.0410686,
    "O1": 13.9430356,
    "N2": 28.4397295,
    "K2": 30.0821373,
    "P1": 14.9589314,
    "Q1": 13.3986609,
    "M4": 57.9682084,
    "MS4": 58.9841042,
    "M6": 86.9523127,
    "MSf": 1.0158958,
    "Ssa": 0.0821373,
    "Sa": 0.0410686,
}
RAYLEIGH = 1.0


@dataclass(frozen=True)
class Constituent:
    """One harmonic: amplitude in metres, phase lag in degrees against the 2000-01-01 epoch."""

    name: str
    amplitude_m: float
    phase_deg: float

    def __post_init__(self) -> None:
        if self.name not in SPEEDS_DEG_H:
            raise ConfigError(f"unknown tide constituent {self.name!r} (known: {', '.join(SPEEDS_DEG_H)})")
        if not math.isfinite(self.amplitude_m) or self.amplitude_m < 0:
            raise ConfigError(f"tide constituent {self.name}: amplitude_m must be a number >= 0")


@dataclass(frozen=True)
class Gauge:
    """A tide gauge stored in ioc: the device and metric holding its level (metres, the same datum)."""

    device_id: str
    metric: str = "water_level_m"


@dataclass(frozen=True)
class TideModel:
    """A harmonic tide: datum plus constituents; ``fitted`` names those refitted from a gauge."""

    datum_m: float
    constituents: tuple[Constituent, ...]
    station: str = ""
    gauge: Gauge | None = None
    fitted: tuple[str, ...] = field(default=())

    def level_m(self, t: np.ndarray | float) -> np.ndarray:
        """Predicted level (m) at epoch seconds ``t`` (an array, or a number giving a 0-d array)."""
        hours = (np.asarray(t, dtype=float) - EPOCH) / 3600.0
        out = np.full(hours.shape, self.datum_m, dtype=float)
        for c in self.constituents:
            out += c.amplitude_m * np.cos(np.radians(SPEEDS_DEG_H[c.name] * hours - c.phase_deg))
        return out

    def extremes(self, start: float, end: float, step_s: float = 60.0) -> list[tuple[float, float, str]]:
        """High and low waters in ``[start, end]``: ``(epoch seconds, level m, "high"|"low")``."""
        t = np.arange(start - step_s, end + 2 * step_s, step_s)
        h = self.level_m(t)
        out = []
        for i in range(1, len(t) - 1):
            if not start <= t[i] <= end:
                continue
            if h[i] > h[i - 1] and h[i] >= h[i + 1]:
                out.append((float(t[i]), float(h[i]), "high"))
            elif h[i] < h[i - 1] and h[i] <= h[i + 1]:
                out.append((float(t[i]), float(h[i]), "low"))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (what ``load_tide`` reads)."""
        return {
            "version": 1,
            "station": self.station,
            "datum_m": round(self.datum_m, 4),
            "constituents": {
                c.name: {"amplitude_m": round(c.amplitude_m, 4), "phase_deg": round(c.phase_deg % 360, 2)}
                for c in self.constituents
            },
            "gauge": None if self.gauge is None else {"device_id": self.gauge.device_id, "metric": self.gauge.metric},
            "fitted": list(self.fitted),
        }


def from_dict(doc: Any, source: str = "tide") -> TideModel:
    """Validate a tide document (the YAML file's content) into a TideModel."""
    if not isinstance(doc, dict) or not isinstance(doc.get("constituents"), dict):
        raise ConfigError(f"{source}: a mapping with 'constituents' is required")
    try:
        constituents = tuple(
            Constituent(str(name), float(v["amplitude_m"]), float(v["phase_deg"]))
            for name, v in doc["constituents"].items()
        )
        datum = float(doc.get("datum_m", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: each constituent needs numeric amplitude_m and phase_deg ({exc})") from exc
    raw_gauge = doc.get("gauge")
    gauge = None
    if raw_gauge is not None:
        if not isinstance(raw_gauge, dict) or not raw_gauge.get("device_id"):
            raise ConfigError(f"{source}: gauge needs a device_id")
        gauge = Gauge(str(raw_gauge["device_id"]), str(raw_gauge.get("metric", "water_level_m")))
    return TideModel(datum, constituents, str(doc.get("station", "")), gauge, tuple(doc.get("fitted", ())))


def load_tide(path: Path | None = None) -> TideModel:
    """The tide of ``path`` (default forecast/tide.yaml)."""
    path = path or DEFAULT_FILE
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the tide file {path}: {exc}") from exc
    return from_dict(doc, str(path))


def resolvable(names: list[str], record_hours: float) -> list[str]:
    """The constituents of ``names`` (in priority order) a record of ``record_hours`` can separate."""
    chosen: list[str] = []
    for name in names:
        speed = SPEEDS_DEG_H[name]
        if speed * record_hours < 360 * RAYLEIGH:
            continue  # not one full cycle in the record
        if all(abs(speed - SPEEDS_DEG_H[o]) * record_hours >= 360 * RAYLEIGH for o in chosen):
            chosen.append(name)
    return chosen


def fit(t: np.ndarray, level: np.ndarray, prior: TideModel, names: list[str] | None = None) -> TideModel:
    """Refit ``prior`` to observed levels by least squares; constituents the record cannot fit are kept.

    ``names`` defaults to ``prior``'s constituents (or, for an empty prior, those the record resolves by the
    Rayleigh criterion); a constituent without one full cycle in the record (Sa needs a year) keeps
    ``prior``'s value, subtracted from the observations before the fit. Needs at least a day of data.
    """
    t = np.asarray(t, dtype=float)
    level = np.asarray(level, dtype=float)
    ok = np.isfinite(t) & np.isfinite(level)
    t, level = t[ok], level[ok]
    if len(t) < 24:
        raise ValueError("a tide fit needs at least 24 observations")
    record_h = (t.max() - t.min()) / 3600
    if record_h < 24:
        raise ValueError(f"a tide fit needs a record of at least a day (got {record_h:.1f} h)")
    wanted = names or [c.name for c in prior.constituents] or resolvable(list(SPEEDS_DEG_H), record_h)
    chosen = [n for n in wanted if SPEEDS_DEG_H[n] * record_h >= 360]
    kept = tuple(c for c in prior.constituents if c.name not in chosen)
    residual = level - TideModel(0.0, kept).level_m(t)
    hours = (t - EPOCH) / 3600.0
    columns = [np.ones_like(hours)]
    for name in chosen:
        phase = np.radians(SPEEDS_DEG_H[name] * hours)
        columns += [np.cos(phase), np.sin(phase)]
    coef, *_ = np.linalg.lstsq(np.column_stack(columns), residual, rcond=None)
    fitted = [
        Constituent(name, float(math.hypot(a, b)), math.degrees(math.atan2(b, a)) % 360)
        for name, a, b in zip(chosen, coef[1::2], coef[2::2], strict=True)
    ]
    logger.info("tide refitted from %d levels over %.1f days: %s", len(t), record_h / 24, ", ".join(chosen))
    return replace(prior, datum_m=float(coef[0]), constituents=kept + tuple(fitted), fitted=tuple(chosen))

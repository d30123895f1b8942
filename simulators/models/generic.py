"""Readings of a kind the simulator has no model of its own for, from its ``simulate`` block in the kinds file.

A new kind is simulated by configuration only: each metric's value is

    base + traffic * demand(t) * centrality + rain * rain_mm_h + noise * N(0, 1)

clamped to the metric's range and rounded to ``digits``. Example (``IOC_KINDS_FILE``)::

    kinds:
      noise:
        metrics:
          laeq_db: {unit: dB, min: 20, max: 140}
        simulate:
          laeq_db: {base: 52, traffic: 18, rain: 0.2, noise: 1.5, digits: 1}

A metric without an entry is not sent (``battery_pct`` excepted: the runner drains every battery).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from ioc.errors import ConfigError
from ioc.kinds import KindSpec, MetricSpec

FIELDS = ("base", "traffic", "rain", "noise", "digits")


@dataclass(frozen=True)
class MetricModel:
    """How one metric moves: a base level, traffic and rain terms, noise, the digits it is sent with."""

    metric: MetricSpec
    base: float
    traffic: float = 0.0
    rain: float = 0.0
    noise: float = 0.0
    digits: int = 1

    def level(self, demand: Any, rain_mm_h: Any, z: Any) -> Any:
        """The unrounded reading for a traffic demand (0..1, times the site's centrality), a rain rate and a
        standard normal draw ``z`` (numbers or arrays), clamped to the metric's range."""
        raw = self.base + self.traffic * demand + self.rain * rain_mm_h + self.noise * z
        return np.clip(raw, self.metric.min, self.metric.max)[()]

    def value(self, demand: float, rain_mm_h: float, rng: random.Random) -> float:
        """The reading sent for a traffic demand and a rain rate, rounded to ``digits``."""
        return round(float(self.level(demand, rain_mm_h, rng.gauss(0.0, 1.0))), self.digits)


def models(kind: KindSpec) -> list[MetricModel]:
    """The models of ``kind``'s ``simulate`` block; ConfigError names a bad entry."""
    out = []
    for name, body in kind.simulate.items():
        where = f"kind {kind.name!r}, simulate.{name}"
        metric = kind.metrics.get(name)
        if metric is None:
            raise ConfigError(f"{where}: {name!r} is not a metric of the kind")
        if not isinstance(body, dict) or set(body) - set(FIELDS):
            raise ConfigError(f"{where}: expected a mapping with keys among {', '.join(FIELDS)}")
        try:
            out.append(
                MetricModel(
                    metric,
                    float(body.get("base", (metric.min + metric.max) / 2)),
                    float(body.get("traffic", 0.0)),
                    float(body.get("rain", 0.0)),
                    float(body.get("noise", 0.0)),
                    int(body.get("digits", 1)),
                )
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return out

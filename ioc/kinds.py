"""The kind registry: which metrics a kind of device reports, in which units, within which ranges."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ioc.errors import ConfigError

BUILTIN_KINDS = Path(__file__).with_name("kinds.yaml")


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a kind: canonical unit, plausible range (inclusive), SenML name and display label."""

    name: str
    unit: str
    min: float
    max: float
    senml: str = ""  # the short SenML name (``water_level`` for ``water_level_cm``), which takes unit conversion
    label: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KindSpec:
    """A kind of device (flood, traffic, camera, ...)."""

    name: str
    interval_s: int
    metrics: dict[str, MetricSpec]
    label: dict[str, str] = field(default_factory=dict)
    # How the simulator makes readings of a kind it has no model of its own for (simulators/models/generic.py).
    simulate: dict[str, Any] = field(default_factory=dict)

    def senml_metric(self, name: str) -> MetricSpec | None:
        """The metric a SenML short name stands for (``water_level`` -> ``water_level_cm``), or None."""
        for metric in self.metrics.values():
            if metric.senml == name:
                return metric
        return None


def _parse(doc: dict[str, Any], source: Path) -> dict[str, KindSpec]:
    kinds: dict[str, KindSpec] = {}
    for name, body in (doc.get("kinds") or {}).items():
        try:
            metrics = {
                m: MetricSpec(
                    m,
                    str(spec["unit"]),
                    float(spec["min"]),
                    float(spec["max"]),
                    str(spec.get("senml") or ""),
                    dict(spec.get("label") or {}),
                )
                for m, spec in (body.get("metrics") or {}).items()
            }
            simulate = body.get("simulate") or {}
            if not isinstance(simulate, dict):
                raise TypeError("simulate must be a mapping of metric to model")
            kinds[name] = KindSpec(
                name, int(body.get("interval_s", 60)), metrics, dict(body.get("label") or {}), dict(simulate)
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"{source}: kind {name!r} is invalid ({exc}); each metric needs unit, min and max"
            ) from exc
    return kinds


@lru_cache(maxsize=8)
def load_kinds(extra: Path | None = None) -> dict[str, KindSpec]:
    """Built-in kinds merged with those of ``extra`` (``IOC_KINDS_FILE``)."""
    kinds = _parse(yaml.safe_load(BUILTIN_KINDS.read_text(encoding="utf-8")), BUILTIN_KINDS)
    if extra is not None:
        try:
            doc = yaml.safe_load(Path(extra).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"IOC_KINDS_FILE {extra} cannot be read: {exc}") from exc
        kinds.update(_parse(doc, Path(extra)))
    return kinds

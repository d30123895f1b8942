"""Faults on demand: which misbehaviour to inject, how often, and how each one mangles a message."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from ioc.kinds import KindSpec

FAULT_KINDS = (
    "drop",
    "malformed",
    "oversized",
    "out_of_range",
    "nan",
    "duplicate",
    "clock_skew",
    "unknown_device",
    "wrong_topic",
)
OVERSIZE_BYTES = 64 * 1024 + 4096
# Values past a kind's plausible range (ioc/kinds.yaml): these for the built-in kinds, else out_of_range().
OUT_OF_RANGE = {
    "flood": ("water_level_cm", 9999.0),
    "traffic": ("avg_speed_kmh", 999.0),
    "camera": ("people_count", 250000),
    "air": ("pm25_ugm3", 5000.0),
}
SKEW_MINUTES = (5, 12, 30, 90, 180, 600)


@dataclass(frozen=True)
class FaultSpec:
    """Probability per telemetry message of each fault kind (at most one fault per message)."""

    rates: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """``0.05`` (spread evenly over every kind) or ``drop=0.01,malformed=0.02,...``."""
        if not text:
            return cls()
        text = text.strip()
        try:
            total = float(text)
        except ValueError:
            pass
        else:
            if not 0 <= total <= 1:
                raise ValueError(f"--faults {text}: a rate must be within 0..1")
            return cls(tuple((kind, total / len(FAULT_KINDS)) for kind in FAULT_KINDS))
        rates: dict[str, float] = {}
        for item in text.split(","):
            kind, sep, value = item.partition("=")
            kind = kind.strip().replace("-", "_")
            if not sep or kind not in FAULT_KINDS:
                raise ValueError(
                    f"--faults {item!r}: expected KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}"
                )
            try:
                rates[kind] = float(value)
            except ValueError:
                raise ValueError(f"--faults {item!r}: {value!r} is not a number") from None
            if not 0 <= rates[kind] <= 1:
                raise ValueError(f"--faults {item!r}: a rate must be within 0..1")
        if sum(rates.values()) > 1:
            raise ValueError("--faults: the rates add up to more than 1")
        return cls(tuple((kind, rates[kind]) for kind in FAULT_KINDS if kind in rates))

    def pick(self, rng: random.Random) -> str | None:
        """Roll once: the fault to inject into this message, or None."""
        if not self.rates:
            return None
        roll = rng.random()
        for kind, rate in self.rates:
            if roll < rate:
                return kind
            roll -= rate
        return None


def out_of_range(kind: KindSpec) -> tuple[str, float]:
    """A metric of ``kind`` and a value past its plausible range."""
    if kind.name in OUT_OF_RANGE:
        return OUT_OF_RANGE[kind.name]
    metric = next(iter(kind.metrics.values()))
    return metric.name, metric.max + max(1.0, abs(metric.max))


def malformed(payload: bytes, rng: random.Random) -> bytes:
    """Cut the payload short and append junk: no decoder can read it."""
    cut = rng.randint(1, max(1, len(payload) - 1))
    return payload[:cut] + b"}{\xff"


def oversized(payload: bytes) -> bytes:
    """The same message padded past 64 KiB while keeping its syntax."""
    try:
        doc = json.loads(payload)
    except ValueError:
        lines = payload.rstrip(b"\n") + b"\n"
        return lines * (OVERSIZE_BYTES // len(lines) + 1)
    pad = "x" * OVERSIZE_BYTES
    if isinstance(doc, list):
        doc.append({"n": "padding", "vs": pad})
    else:
        doc["padding"] = pad
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def with_nan(payload: bytes) -> bytes:
    """Replace the first measured number with a literal ``NaN`` (JSON) or ``NaN`` field (CSV)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        fields = payload.decode().split(",")
        fields[2] = "NaN"
        return ",".join(fields).encode()
    if isinstance(doc, dict) and doc.get("sensordatavalues"):
        doc["sensordatavalues"][0]["value"] = "nan"  # Sensor.Community sends its numbers as strings
    else:
        _replace_first_number(doc, skip={"seq", "period", "bt", "lane", "Confidence"})
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _replace_first_number(node: Any, skip: set[str]) -> bool:
    items: list[tuple[Any, Any]]
    if isinstance(node, dict):
        items = [(k, v) for k, v in node.items() if k not in skip]
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return False
    for key, value in items:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            node[key] = math.nan
            return True
        if _replace_first_number(value, skip):
            return True
    return False


def skew_s(rng: random.Random) -> float:
    """A device clock off by minutes to hours, either way."""
    return rng.choice((-1, 1)) * rng.choice(SKEW_MINUTES) * 60.0

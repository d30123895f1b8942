"""The ingest metrics that docs/operations.md tells operators to alert on are the ones the ingest declares."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

import ingest.metrics  # noqa: F401  (declares the metrics in the default registry)

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def test_every_documented_ingest_metric_is_declared() -> None:
    doc = OPERATIONS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`(ioc_ingest_[a-z_]+)", doc))
    declared = {metric.name for metric in REGISTRY.collect()} | {
        f"{metric.name}_total" for metric in REGISTRY.collect() if metric.type == "counter"
    }
    assert documented and documented <= declared, documented - declared

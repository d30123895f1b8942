"""Alert rules files: validation, mtime reload, and an invalid file keeping the previous rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dashboards.alerts.observe import threshold_level
from dashboards.alerts.rules import Rule, RuleBook, parse
from ioc.settings import REPO_ROOT

GOOD = """
version: 1
evaluate_every_s: 2
rules:
  - {id: level, type: threshold, kind: flood, metric: water_level_cm, warning: 20, critical: 30,
     hysteresis: 3}
"""


def test_shipped_rules_are_valid() -> None:
    rules = parse((REPO_ROOT / "dashboards" / "rules.yaml").read_text()).rules
    types = {"threshold", "rate_of_rise", "event", "device_status", "air_quality", "air_suspect", "forecast"}
    assert {r.type for r in rules} == types
    observed = {r.id for r in rules}
    assert all(r.observed_rule in observed for r in rules if r.type == "forecast")


@pytest.mark.parametrize(
    "text, message",
    [
        ("version: 2\nrules: []", "version"),
        ("version: 1\nrules: [{id: x, type: threshold, metric: m}]", "warning and/or critical"),
        ("version: 1\nrules: [{id: x, type: event}]", "event_types"),
        ("version: 1\nrules: [{id: x, type: forecast, metric: m}]", "warning and/or critical"),
        ("version: 1\nrules: [{id: x, type: forecast, metric: m, warning: 1, within_min: 180}]", "within_min"),
        ("version: 1\nrules: [{id: x, type: device_status}, {id: x, type: device_status}]", "duplicate"),
        ("version: 1\nrules: [{id: x, type: device_status, colour: red}]", "colour"),
        ("version: [1", "YAML"),
    ],
)
def test_invalid_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_reload_on_change_and_keep_old_rules_when_invalid(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    book = RuleBook(path)
    assert book.refresh() and [r.id for r in book.current.rules] == ["level"]
    assert not book.refresh()  # unchanged
    path.write_text("version: 1\nrules: [{id: broken, type: threshold}]\n")
    os.utime(path, ns=(1, 1))
    assert not book.refresh() and [r.id for r in book.current.rules] == ["level"]
    path.write_text(GOOD.replace("id: level", "id: renamed"))
    assert book.refresh() and [r.id for r in book.current.rules] == ["renamed"]
    path.unlink()
    assert not book.refresh() and book.current.rules[0].id == "renamed"


def test_threshold_levels_with_hysteresis() -> None:
    above = Rule(id="a", type="threshold", metric="m", warning=20, critical=30, hysteresis=3)
    assert [threshold_level(above, v, 20, 30, None) for v in (None, 10, 20, 29.9, 30)] == [
        None,
        None,
        "warning",
        "warning",
        "critical",
    ]
    assert threshold_level(above, 18, 20, 30, "warning") == "hold"  # inside the band of an active alert
    assert threshold_level(above, 17, 20, 30, "warning") is None
    below = Rule(
        id="b", type="threshold", metric="speed", direction="below", warning=15, critical=8, hysteresis=3
    )
    assert [threshold_level(below, v, 15, 8, None) for v in (40, 15, 9, 8)] == [
        None,
        "warning",
        "warning",
        "critical",
    ]
    assert threshold_level(below, 17, 15, 8, "critical") == "hold"

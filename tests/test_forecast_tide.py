"""forecast.tide: the city's tide from its YAML, and the least-squares refit from a gauge's levels."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from forecast.tide import Constituent, TideModel, fit, load_tide, resolvable
from ioc.errors import ConfigError

START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
MIXED = TideModel(
    0.1,
    (
        Constituent("M2", 0.95, 40),
        Constituent("S2", 0.38, 80),
        Constituent("K1", 0.58, 300),
        Constituent("O1", 0.43, 250),
        Constituent("N2", 0.19, 20),
    ),
)


def test_the_city_tide_is_semi_diurnal_with_a_spring_neap_cycle() -> None:
    tide = load_tide()
    highs = [e for e in tide.extremes(START, START + 14 * 86400) if e[2] == "high"]
    assert 26 <= len(highs) <= 28  # two high waters a day (every 12 h 25 min)
    levels = [h[1] for h in highs]
    # Spring tides reach the Phú An alarm levels (1.50-1.70 m), neap tides stay well below.
    assert max(levels) > 1.5 and min(levels) < 1.0


def test_refit_recovers_a_mixed_tide_from_three_noisy_weeks() -> None:
    t = START + np.arange(0, 21 * 86400, 60.0)
    observed = MIXED.level_m(t) + np.random.default_rng(1).normal(0, 0.05, len(t))
    fitted = fit(t, observed, TideModel(0.0, ()), ["M2", "S2", "K1", "O1", "N2"])
    week = START + 21 * 86400 + np.arange(0, 7 * 86400, 600.0)
    assert np.sqrt(np.mean((fitted.level_m(week) - MIXED.level_m(week)) ** 2)) < 0.01
    assert set(fitted.fitted) == {"M2", "S2", "K1", "O1", "N2"}


def test_refit_keeps_what_a_short_record_cannot_resolve() -> None:
    prior = load_tide()
    t = START + np.arange(0, 3 * 86400, 300.0)
    fitted = fit(t, prior.level_m(t), prior)
    assert "Sa" not in fitted.fitted  # a year's cycle is not in three days
    assert {c.name: c for c in fitted.constituents}["Sa"] == {c.name: c for c in prior.constituents}["Sa"]
    assert np.allclose(fitted.level_m(t), prior.level_m(t), atol=0.02)


def test_rayleigh_criterion_needs_fifteen_days_for_m2_and_s2() -> None:
    assert resolvable(["M2", "S2"], 14 * 24) == ["M2"]
    assert resolvable(["M2", "S2"], 15 * 24) == ["M2", "S2"]


def test_fit_refuses_less_than_a_day() -> None:
    t = START + np.arange(0, 6 * 3600, 60.0)
    with pytest.raises(ValueError, match="at least a day"):
        fit(t, MIXED.level_m(t), MIXED)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("constituents: {X9: {amplitude_m: 1, phase_deg: 0}}", "unknown tide constituent 'X9'"),
        ("constituents: {M2: {amplitude_m: -1, phase_deg: 0}}", "amplitude_m must be a number >= 0"),
        ("constituents: {M2: {phase_deg: 0}}", "numeric amplitude_m and phase_deg"),
        ("datum_m: 1", "a mapping with 'constituents'"),
        ("constituents: {}\ngauge: {metric: x}", "gauge needs a device_id"),
    ],
)
def test_bad_tide_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tide.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_tide(path)

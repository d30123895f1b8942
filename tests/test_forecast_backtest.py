"""forecast.backtest: how crossings of a flood level and the forecasts' alarms are counted."""

from __future__ import annotations

import numpy as np

from forecast.backtest import Scores, crossings, score_crossings


def test_a_crossing_needs_the_level_to_fall_back_first() -> None:
    y = np.array([0, 10, 19.5, 20.2, 19.8, 20.5, 15, 21, np.nan, 25], dtype=float)
    # 20.2 crosses; 19.8 -> 20.5 is noise (not 2 cm below); 15 -> 21 crosses again.
    assert crossings(y, 20.0, 0, len(y)) == [3, 7]


def test_lead_time_hits_misses_and_false_alarms() -> None:
    alarm = np.zeros(400, dtype=bool)
    alarm[100:160] = True  # on from minute 100: the crossing at 160 is predicted 60 minutes ahead
    alarm[300:305] = True  # nothing follows within 120 minutes: a false alarm
    got = score_crossings(alarm, [160, 250], offset=0)
    assert got["leads"] == [60, None]
    assert got["false_alarms"] == 1


def test_scores_mae_rmse_and_coverage() -> None:
    s = Scores()
    y = np.array([1.0, 2.0, 3.0, np.nan])
    s.add(np.array([1.0, 3.0, 5.0, 1.0]), y, np.array([0.0, 2.5, 0, 0]), np.array([2.0, 4.0, 4, 4]))
    row = s.row()
    assert row["n"] == 3 and row["mae"] == 1.0 and abs(row["rmse"] - (5 / 3) ** 0.5) < 1e-12
    assert row["coverage"] == 2 / 3

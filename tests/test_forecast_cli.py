"""``ioc forecast``: arguments refused with a clear message, and the tide's high and low waters printed."""

from __future__ import annotations

import pytest

from ioc.cli import build_parser, main


@pytest.mark.parametrize(
    "argv", [["backtest", "--days", "0"], ["backtest", "--stride", "-5"], ["train", "--days", "0"]]
)
def test_counts_below_one_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["forecast", *argv])
    assert exit_.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_tide_prints_two_high_waters_a_day(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", "tide", "--hours", "24"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 3 <= len(lines) <= 5
    assert 1 <= sum(" high " in line for line in lines) <= 2 and all("(UTC+7)" in line for line in lines)

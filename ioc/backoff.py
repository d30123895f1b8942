"""Exponential backoff between retries of an infrastructure call (a connection, a restart): one rule for all."""

from __future__ import annotations

from dataclasses import dataclass


def delay(failures: int, first: float, ceiling: float) -> float:
    """The wait after ``failures`` consecutive failures: none for 0, then ``first``, doubling, at most ``ceiling``."""
    return 0.0 if failures <= 0 else min(first * 2.0 ** (failures - 1), ceiling)


@dataclass(slots=True)
class Backoff:
    """The retry state of one connection: ``failed()`` gives the next wait, ``succeeded()`` starts over."""

    first: float
    ceiling: float
    failures: int = 0

    def failed(self) -> float:
        """Count a failure; the wait before the next try."""
        self.failures += 1
        return delay(self.failures, self.first, self.ceiling)

    def succeeded(self) -> None:
        """Reset after a success: the next failure waits ``first`` again."""
        self.failures = 0

    @property
    def upcoming(self) -> float:
        """The wait the next failure would give, without counting one."""
        return delay(self.failures + 1, self.first, self.ceiling)

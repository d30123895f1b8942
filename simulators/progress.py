"""Progress on the terminal: one line every few seconds when stderr is a TTY, one summary line always."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints rate, totals, errors and faults to ``stream`` at most every ``every_s`` seconds."""

    def __init__(self, label: str, every_s: float = 5.0, stream: TextIO | None = None) -> None:
        self.label = label
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self._last_at = self.started
        self._last_sent = 0

    def update(self, sent: int, errors: int, faults: int, extra: str = "") -> None:
        """Report progress if the interval has passed and the stream is a terminal."""
        now = time.monotonic()
        if not self.live or now - self._last_at < self.every_s:
            return
        rate = (sent - self._last_sent) / (now - self._last_at)
        self._last_at, self._last_sent = now, sent
        self._write(
            f"{self.label}: {rate:,.0f} msg/s, sent {sent:,}, errors {errors:,}, faults {faults:,}{extra}"
        )

    def finish(self, sent: int, errors: int, faults: int, extra: str = "") -> None:
        """The one summary line of the run."""
        elapsed = max(1e-9, time.monotonic() - self.started)
        self._write(
            f"{self.label} done: sent {sent:,} in {elapsed:,.1f} s ({sent / elapsed:,.0f} msg/s), "
            f"errors {errors:,}, faults {faults:,}{extra}"
        )

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

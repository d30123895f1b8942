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
        self._write(f"{self.label}: {rate:,.0f} msg/s, sent {sent:,}, errors {errors:,}, faults {faults:,}{extra}")

    def finish(self, sent: int, errors: int, faults: int, extra: str = "") -> None:
        """The one summary line of the run."""
        elapsed = max(1e-9, time.monotonic() - self.started)
        self._write(
            f"{self.label} done: sent {sent:,} in {elapsed:,.1f} s ({sent / elapsed:,.0f} msg/s), "
            f"errors {errors:,}, faults {faults:,}{extra}"
        )

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class Bar:
    """A progress bar on a terminal: redrawn in place, or (``in_place=False``, beside other output) one line
    every ``every_s``. Elsewhere only the final line."""

    WIDTH = 30

    def __init__(
        self, label: str, every_s: float | None = None, stream: TextIO | None = None, in_place: bool = True
    ) -> None:
        self.label = label
        self.in_place = in_place
        self.every_s = every_s if every_s is not None else 0.2 if in_place else 5.0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self._last_at = self.started

    def update(self, fraction: float, extra: str = "") -> None:
        """Show the bar at ``fraction`` (0..1) done."""
        now = time.monotonic()
        if not self.live or now - self._last_at < self.every_s:
            return
        self._last_at = now
        filled = round(self.WIDTH * min(1.0, max(0.0, fraction)))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"{self.label} [{bar}] {fraction:4.0%} {now - self.started:5.1f} s  {extra}"
        self.stream.write(f"\r{line}\x1b[K" if self.in_place else f"{line}\n")
        self.stream.flush()

    def finish(self, summary: str) -> None:
        """End the bar with one summary line."""
        line = f"{self.label}: {summary} in {time.monotonic() - self.started:.1f} s"
        self.stream.write(f"\r{line}\x1b[K\n" if self.live and self.in_place else f"{line}\n")
        self.stream.flush()

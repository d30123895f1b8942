"""Load-insensitive figures for the benchmarks: a process's CPU seconds and memory, the machine's load.

Wall-clock latency on a shared machine moves with what the neighbours do; the CPU seconds a process
spends on a given amount of work do not (much), so the benchmarks print both.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def rss_bytes(pid: int) -> int:
    """The resident memory of ``pid`` in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def load() -> str:
    """The machine's 1/5/15-minute load averages, and its cores."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


@dataclass
class Meter:
    """CPU seconds of ``pid`` and wall seconds since ``start()``."""

    pid: int
    cpu0: float = 0.0
    wall0: float = field(default_factory=time.monotonic)

    def start(self) -> Meter:
        """Start (or restart) counting."""
        self.cpu0, self.wall0 = cpu_seconds(self.pid), time.monotonic()
        return self

    def cpu(self) -> float:
        """CPU seconds since ``start()``."""
        return cpu_seconds(self.pid) - self.cpu0

    def share(self) -> float:
        """CPU seconds per wall second since ``start()`` (1.0 = one core busy)."""
        return self.cpu() / max(time.monotonic() - self.wall0, 1e-9)

"""``ioc up``'s restart policy: exponential backoff, a fresh budget after a stable run, never giving up.

A process that exits is started again after 1, 2, 4 ... up to 60 s; one that ran for STABLE_S before
exiting starts again at once with a fresh budget. After FAILING_AFTER exits in a row it is reported as
failing (and still restarted). The state is written to a small JSON file in the state folder, which the
server shows in ``/api/v1/health`` and on the wall; the loop that calls ``poll`` never sleeps here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ioc.backoff import delay
from ioc.processes import Child

logger = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
STABLE_S = 120.0  # a process that ran this long before exiting starts again with a fresh budget
FAILING_AFTER = 3  # exits in a row without a stable run: reported as failing
STATUS_FILE = "processes.json"


@dataclass
class ProcessStatus:
    """What health reports about one supervised process."""

    state: str = "running"  # running | restarting (waiting to start again) | failing (keeps exiting)
    restarts: int = 0  # since ``ioc up`` started
    failures: int = 0  # exits in a row, each after less than STABLE_S
    last_exit_code: int | None = None
    since: float = 0.0  # wall-clock time (epoch seconds) of the last change of state


@dataclass
class _Entry:
    child: Child | None
    started: float  # monotonic
    status: ProcessStatus
    restart_at: float | None = None


def backoff(failures: int) -> float:
    """Seconds to wait before the next start after ``failures`` exits in a row (0 after a stable run)."""
    return delay(failures, BACKOFF_FIRST_S, BACKOFF_MAX_S)


class Supervisor:
    """Restarts exited children on a schedule and publishes their states to ``status_path``."""

    def __init__(
        self,
        start: Callable[[str], Child],
        status_path: Path,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.start = start
        self.status_path = status_path
        self.clock = clock
        self.wall = wall
        self.entries: dict[str, _Entry] = {}

    def add(self, name: str, child: Child) -> None:
        """Supervise ``child`` (just started) under ``name``."""
        self.entries[name] = _Entry(child, self.clock(), ProcessStatus(since=self.wall()))
        self.write()

    def poll(self) -> None:
        """Notice exits and start what is due; returns at once."""
        changed = False
        now = self.clock()
        for name, entry in self.entries.items():
            status = entry.status
            if entry.child is not None:
                code = entry.child.proc.poll()
                if code is None:
                    if status.failures and now - entry.started >= STABLE_S:
                        status.failures, status.state, status.since = 0, "running", self.wall()
                        changed = True
                    continue
                entry.child.stop()  # closes its log
                entry.child = None
                status.failures = 1 if now - entry.started >= STABLE_S else status.failures + 1
                status.last_exit_code = code
                status.state = "failing" if status.failures >= FAILING_AFTER else "restarting"
                status.since = self.wall()
                entry.restart_at = now + backoff(status.failures - 1)
                log = logger.error if status.state == "failing" else logger.warning
                wait = entry.restart_at - now
                log("%s exited with code %s (%d in a row): starting it again in %.0f s", name, code, status.failures,
                    wait)
                changed = True
            if entry.restart_at is not None and now >= entry.restart_at:
                entry.child = self.start(name)
                entry.started, entry.restart_at = now, None
                status.restarts += 1
                if status.state == "restarting":
                    status.state, status.since = "running", self.wall()
                changed = True
        if changed:
            self.write()

    def snapshot(self) -> dict[str, Any]:
        """The status file's content."""
        return {"supervisor_pid": os.getpid(), "processes": {n: asdict(e.status) for n, e in self.entries.items()}}

    def write(self) -> None:
        """Replace the status file atomically (private to this user)."""
        tmp = self.status_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self.snapshot(), out)
        os.replace(tmp, self.status_path)

    def remove(self) -> None:
        """Delete the status file (nothing is supervised any more)."""
        self.status_path.unlink(missing_ok=True)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The processes of the ``ioc up`` running on ``state_dir``, or None (none runs, or not readable)."""
    try:
        data = json.loads((state_dir / STATUS_FILE).read_text())
        os.kill(int(data["supervisor_pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    processes = data.get("processes")
    return processes if isinstance(processes, dict) else None

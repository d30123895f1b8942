"""What-if simulations for leaders: queued, cached by scenario, cancellable, each in a worker process.

``POST /api/v1/simulations`` -> ``Simulations.submit`` (a cached result comes back at once) -> one run
at a time: ``python -m simulators.whatif`` in a child process at a lower priority (JSON in, JSON out),
so a run never holds the server's event loop or CPU -> ``annotate`` adds what the live state knows (names,
zones, places, flood lines, the present readings) and the levels and congestion bands the server computes.
Runs live in memory (the newest MAX_RUNS); a restart forgets them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dashboards import figures
from ioc.background import Background
from ioc.processes import communicate_within

logger = logging.getLogger(__name__)

Row = dict[str, Any]
MAX_RUNS = 50  # runs (and cached results) kept
RUN_TIMEOUT_S = 60.0
CACHE_S = 600.0  # a scenario asked again within this long gets the stored result (the present moves on)


@dataclass
class Run:
    """One what-if run: its scenario, state (queued, running, done, failed, cancelled) and result."""

    id: str
    key: str
    scenario: Row
    state: str = "queued"
    created: float = field(default_factory=time.time)
    seconds: float | None = None
    result: Row | None = None
    error: str | None = None
    process: asyncio.subprocess.Process | None = None

    def view(self) -> Row:
        """The run as the API shows it."""
        return {
            "id": self.id,
            "state": self.state,
            "scenario": self.scenario,
            "created": datetime.fromtimestamp(self.created, UTC).isoformat(),
            "seconds": self.seconds,
            "error": self.error,
            "result": self.result,
        }


def scenario_key(scenario: Row) -> str:
    """The cache key of a scenario (its canonical JSON)."""
    return hashlib.sha256(json.dumps(scenario, sort_keys=True).encode()).hexdigest()[:16]


def annotate(raw: Row, devices: dict[str, Row]) -> Row:
    """The worker's series with each device's name, zone, place, present reading and the server's bands."""
    floods = []
    for device_id, series in raw.get("floods", {}).items():
        d = devices.get(device_id)
        if d is None:
            continue
        lines = d.get("thresholds") or {}
        now = (d.get("latest") or {}).get("water_level_cm") or {}
        levels = [figures.flood_level(v, lines) for v in series]
        floods.append({
            "device_id": device_id, "name": d.get("name") or device_id, "zone": d.get("zone"),
            "lat": d.get("lat"), "lon": d.get("lon"), "warning_cm": lines.get("warning_cm"),
            "danger_cm": lines.get("danger_cm"), "now": now.get("value"), "now_level": d.get("level"),
            "depth_cm": series, "levels": levels, "peak_cm": max(series, default=None),
        })  # fmt: skip
    traffic = []
    for device_id, series in raw.get("traffic", {}).items():
        d = devices.get(device_id)
        if d is None:
            continue
        now = (d.get("latest") or {}).get("avg_speed_kmh") or {}
        traffic.append({
            "device_id": device_id, "name": d.get("name") or device_id, "zone": d.get("zone"),
            "lat": d.get("lat"), "lon": d.get("lon"), "now": now.get("value"), "now_congestion": d.get("congestion"),
            "speed_kmh": series, "congestion": [figures.congestion(v, d.get("thresholds") or {}) for v in series],
        })  # fmt: skip
    steps = len(raw.get("times", []))
    at = lambda i, level: sum(1 for f in floods if f["levels"][i] == level)  # noqa: E731
    summary = [
        {
            "warning": at(i, "warning"),
            "danger": at(i, "danger"),
            "jammed": sum(1 for q in traffic if q["congestion"][i] == len(figures.CONGESTION_RATIOS)),
        }
        for i in range(steps)
    ]
    keep = ("start", "rain_from", "rain_mm_h", "times", "tide_m", "rain", "seconds")
    return {
        **{k: raw.get(k) for k in keep},
        "floods": sorted(floods, key=lambda f: -(f["peak_cm"] or 0)),
        "traffic": traffic,
        "summary": summary,
    }


class Simulations(Background):
    """The queue of what-if runs (an async context manager: its worker task stops, and kills a run, on exit)."""

    task_name = "simulations"

    def __init__(self, fleet_file: str, devices: Any) -> None:
        self.fleet_file = fleet_file
        self.devices = devices  # () -> the live devices by id (the hub's state)
        self.runs: OrderedDict[str, Run] = OrderedDict()
        self._queue: asyncio.Queue[Run] = asyncio.Queue()

    def submit(self, scenario: Row) -> Run:
        """Queue a run of ``scenario``, or return a recent run of the same scenario (queued, running or done)."""
        key = scenario_key(scenario)
        for run in reversed(self.runs.values()):
            fresh = time.time() - run.created < CACHE_S
            if run.key == key and fresh and run.state in ("queued", "running", "done"):
                return run
        run = Run(uuid.uuid4().hex[:12], key, scenario)
        self.runs[run.id] = run
        while len(self.runs) > MAX_RUNS:
            self.runs.popitem(last=False)
        self._queue.put_nowait(run)
        return run

    def cancel(self, run: Run) -> None:
        """Cancel a queued or running run (a finished one stays as it is)."""
        if run.state == "queued":
            run.state = "cancelled"
        elif run.state == "running" and run.process is not None and run.process.returncode is None:
            run.state = "cancelled"
            run.process.kill()

    async def run(self) -> None:
        """Take queued runs one at a time, until cancelled."""
        while True:
            run = await self._queue.get()
            if run.state != "queued":
                continue
            try:
                await self._run(run)
            except Exception as exc:  # one bad run must not stop the queue
                logger.exception("what-if run %s failed", run.id)
                run.state, run.error = "failed", str(exc)

    async def _run(self, run: Run) -> None:
        devices = self.devices()
        depths = {
            d["device_id"]: (d.get("latest") or {}).get("water_level_cm", {}).get("value")
            for d in devices.values()
            if d.get("kind") == "flood"
        }
        request = {
            **run.scenario,
            "fleet_file": self.fleet_file,
            "now": datetime.now(UTC).isoformat(),
            "depths": {k: v for k, v in depths.items() if isinstance(v, int | float)},
        }
        run.state = "running"
        started = time.monotonic()
        run.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulators.whatif",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await communicate_within(run.process, json.dumps(request).encode(), RUN_TIMEOUT_S)
        except TimeoutError:
            run.state, run.error = "failed", f"took over {RUN_TIMEOUT_S:.0f} s"
            return
        run.seconds = round(time.monotonic() - started, 3)
        if run.state == "cancelled":
            return
        try:
            raw = json.loads(out or b"{}")
        except ValueError:
            raw = {"error": err.decode(errors="replace")[-500:] or "no answer"}
        if run.process.returncode != 0 or "error" in raw:
            run.state, run.error = "failed", str(raw.get("error") or err.decode(errors="replace")[-500:])
            logger.warning("what-if run %s failed: %s", run.id, run.error)
            return
        run.result = annotate(raw, devices)
        run.state = "done"
        logger.info("what-if run %s done in %.2f s", run.id, run.seconds)

"""Figures from a Chromium performance trace of the wall: main-thread time per update, longest task, heap slope."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TOP_LEVEL = {"ThreadControllerImpl::RunTask", "RunTask"}
MESSAGE = "FunctionCall:ws.onmessage"  # live.js's handler of one websocket message
# What the main thread's time went on (these nest: a redraw's forced layout counts in both lines).
PARTS = {
    "message handlers": {MESSAGE},
    "redraws (timers)": {"TimerFire"},
    "animation frames": {"FireAnimationFrame"},
    "style + layout": {"UpdateLayoutTree", "Layout"},
    "paint + layers": {"PrePaint", "Paint", "Layerize", "UpdateLayer", "Commit"},
    "garbage collection": {"MinorGC", "MajorGC", "V8.GC_SCAVENGER", "V8.GC_MARK_COMPACTOR"},
}


@dataclass
class TraceFigures:
    """What one traced window of the wall cost its renderer's main thread (wall-clock and thread CPU time)."""

    updates: int  # snapshot and delta frames the page's websocket received
    messages: int  # websocket messages handled on the main thread
    seconds: float
    busy_ms: float  # the union of the main thread's top-level tasks, wall clock
    cpu_ms: float  # ...in the thread's own CPU time (what a starved thread really spent)
    longest_task_ms: float
    longest_task_cpu_ms: float
    longest_frame_ms: float  # the longest animation frame the page reported (0: none over 50 ms)
    frames_over_100: int
    parts: dict[str, float] = field(default_factory=dict)  # CPU ms per update

    @property
    def per_update(self) -> int:
        """The updates the busy time is divided by: the dispatched messages (else the received frames)."""
        return self.messages or self.updates or 1

    @property
    def busy_per_update_ms(self) -> float:
        """Main-thread milliseconds per websocket update."""
        return self.busy_ms / self.per_update

    @property
    def cpu_per_update_ms(self) -> float:
        """Main-thread CPU milliseconds per websocket update."""
        return self.cpu_ms / self.per_update

    @property
    def busy_share(self) -> float:
        """The share of the window the main thread was busy."""
        return self.busy_ms / (self.seconds * 1000) if self.seconds else 0.0

    def line(self) -> str:
        """One line for the run."""
        return (
            f"{self.messages} updates in {self.seconds:.1f} s, CPU {self.cpu_per_update_ms:.2f} ms/update, "
            f"busy {self.busy_per_update_ms:.2f} ms/update ({self.busy_share * 100:.0f} % of the window), "
            f"longest task {self.longest_task_ms:.0f} ms ({self.longest_task_cpu_ms:.0f} ms CPU), "
            f"longest frame {self.longest_frame_ms:.0f} ms, frames > 100 ms: {self.frames_over_100}"
        )


def main_thread(events: list[dict[str, Any]]) -> tuple[int, int]:
    """(pid, tid) of the renderer main thread that dispatched the most websocket messages."""
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    if not mains:
        raise ValueError("no renderer main thread in the trace")
    dispatched = Counter((e["pid"], e["tid"]) for e in events if event_name(e) == MESSAGE)
    return max(mains, key=lambda m: (dispatched[m], sum(1 for e in events if (e.get("pid"), e.get("tid")) == m)))


def event_name(event: dict[str, Any]) -> str:
    """The event's name, with the function's name for function calls (``FunctionCall:ws.onmessage``)."""
    name = str(event.get("name", ""))
    if name == "FunctionCall":
        return f"{name}:{event.get('args', {}).get('data', {}).get('functionName', '')}"
    return name


def union_ms(spans: list[tuple[float, float]]) -> float:
    """Milliseconds covered by the (start, end) microsecond spans, overlaps counted once."""
    total = 0.0
    end = float("-inf")
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total / 1000


def spans(events: list[dict[str, Any]], clock: str) -> list[tuple[float, float]]:
    """The events' (start, end) in microseconds: ``clock`` "ts" for wall clock, "tts" for thread CPU time."""
    length = "dur" if clock == "ts" else "tdur"
    return [(float(e[clock]), float(e[clock]) + float(e[length])) for e in events if clock in e and length in e]


def analyse(trace: dict[str, Any] | list[dict[str, Any]], frames: list[list[float]], updates: int) -> TraceFigures:
    """The figures of one trace; ``frames`` are the page's long animation frames [start, duration, blocking]."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    pid, tid = main_thread(events)
    mine = [e for e in events if e.get("pid") == pid and e.get("tid") == tid and e.get("ph") == "X"]
    tasks = [e for e in mine if e.get("name") in TOP_LEVEL]
    wall, cpu = spans(tasks, "ts"), spans(tasks, "tts")
    seconds = (max(b for _, b in wall) - min(a for a, _ in wall)) / 1e6 if wall else 0.0
    messages = sum(1 for e in mine if event_name(e) == MESSAGE)
    per = messages or updates or 1
    parts = {
        part: union_ms(spans([e for e in mine if event_name(e) in names], "tts")) / per for part, names in PARTS.items()
    }
    return TraceFigures(
        updates=updates,
        messages=messages,
        seconds=seconds,
        busy_ms=union_ms(wall),
        cpu_ms=union_ms(cpu),
        longest_task_ms=max(((b - a) / 1000 for a, b in wall), default=0.0),
        longest_task_cpu_ms=max(((b - a) / 1000 for a, b in cpu), default=0.0),
        longest_frame_ms=max((f[1] for f in frames), default=0.0),
        frames_over_100=sum(1 for f in frames if f[1] > 100),
        parts=parts,
    )


def heap_slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per 10 minutes (0 for fewer than two)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_h = sum(h for _, h in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if not var:
        return 0.0
    return sum((t - mean_t) * (h - mean_h) for t, h in samples) / var * 600

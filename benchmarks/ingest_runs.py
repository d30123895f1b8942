"""One ingest benchmark run: a load (the raw generator at a rate, or paho publishers of pre-generated messages)
against whichever subscriber is running, with stored rows, loss, duplicates and each process's CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from common import ioc, median, progress

from ioc.up import Stack

STALL_S = 15.0  # no new row for this long after the load: the subscriber has stored all it will


def count_rows(stack: Stack) -> int:
    """Measurement rows stored so far."""
    assert stack.postgres is not None
    return int(stack.postgres.psql("SELECT count(*) FROM measurements"))


def duplicates(stack: Stack) -> int:
    """Rows beyond one per (device, metric, part, time): stored twice."""
    assert stack.postgres is not None
    distinct = stack.postgres.psql(
        "SELECT count(*) FROM (SELECT DISTINCT device_id, metric, part, time FROM measurements) d"
    )
    return count_rows(stack) - int(distinct)


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its living children (PostgreSQL's backends)."""
    total = 0.0
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


@dataclass
class CpuSplit:
    """CPU seconds per role (ingest, broker, database, load, ...) over a run."""

    pids: dict[str, list[int]]
    start: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    wall0: float = 0.0
    wall_s: float = 0.0

    def begin(self) -> CpuSplit:
        """Start counting."""
        self.start = {role: sum(tree_cpu(p) for p in pids) for role, pids in self.pids.items()}
        self.wall0 = time.monotonic()
        return self

    def add(self, role: str, pid: int) -> None:
        """Count a process started after ``begin`` (a load generator) from zero."""
        self.pids.setdefault(role, []).append(pid)
        self.start.setdefault(role, 0.0)

    def sample(self) -> None:
        """Note each role's CPU so far (call while the processes still live)."""
        for role, pids in self.pids.items():
            now = sum(tree_cpu(p) for p in pids)
            self.spent[role] = max(self.spent.get(role, 0.0), now - self.start[role])
        self.wall_s = time.monotonic() - self.wall0

    def figures(self, messages: float) -> dict[str, float]:
        """Cores used per role over the run, and CPU microseconds per stored message."""
        out: dict[str, float] = {}
        for role, cpu in self.spent.items():
            out[f"cores_{role}"] = cpu / max(self.wall_s, 1e-9)
            out[f"us_per_msg_{role}"] = 1e6 * cpu / max(messages, 1.0)
        out["us_per_msg_total"] = 1e6 * sum(self.spent.values()) / max(messages, 1.0)
        return out


def wait_stored(stack: Stack, expected_rows: int, started: float, split: CpuSplit) -> tuple[int, float]:
    """Wait until ``expected_rows`` are stored or no row arrives for STALL_S; (rows, seconds from start to the last)."""
    rows, changed = count_rows(stack), time.monotonic()
    while rows < expected_rows and time.monotonic() - changed < STALL_S:
        time.sleep(0.25)
        split.sample()
        n = count_rows(stack)
        if n != rows:
            rows, changed = n, time.monotonic()
    split.sample()
    return rows, changed - started


def raw_load(stack: Stack, split: CpuSplit, rate: int, seconds: int, devices: int, name: str) -> dict[str, float]:
    """The raw-socket generator (`ioc simulate --load`) at ``rate`` msg/s for ``seconds``: stored rate and loss."""
    manifest = stack.state_dir / f"manifest-{name}.json"
    base = count_rows(stack)
    split.begin()
    load = ioc(stack, f"load-{name}", "simulate", "--load", str(rate), "--devices", str(devices),
               "--duration", str(seconds), "--manifest", str(manifest))  # fmt: skip
    split.add("load", load.proc.pid)
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while load.proc.poll() is None:
        time.sleep(1.0)
        split.sample()
        samples.append((time.monotonic(), count_rows(stack) - base))
    sent = json.loads(manifest.read_text())
    rows, took = wait_stored(stack, base + 3 * sent["acked"], started, split)
    stored = (rows - base) / 3
    per_second = [(b[1] - a[1]) / 3 / (b[0] - a[0]) for a, b in zip(samples, samples[1:], strict=False) if b[0] > a[0]]
    return {
        "offered_msg_s": sent["rate_achieved"],
        "acked": sent["acked"],
        "stored_msgs": stored,
        "lost": sent["acked"] - stored,
        "stored_msg_s": stored / max(took, 1e-9),
        "median_msg_s_per_second": median(per_second[2:]),
        "drain_after_load_s": max(0.0, took - seconds),
        **split.figures(stored),
    }


def paho_load(
    stack: Stack, split: CpuSplit, messages: int, publishers: int, devices: int, name: str
) -> dict[str, float]:
    """``messages`` pre-generated readings published by ``publishers`` paho QoS 1 clients as fast as the broker
    takes them; the stored rate is messages over the time from the first publish to the last row stored."""
    script = str(Path(__file__).with_name("paho_publish.py"))
    share, per = devices // publishers, messages // publishers
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                script,
                stack.service_mqtt_url("simulate"),
                f"pub-{name}-{i}",
                str(1 + i * share),
                str(share),
                str(per),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(publishers)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", "a publisher did not start"
    base = count_rows(stack)
    split.begin()
    for p in procs:
        split.add("load", p.pid)
    started = time.monotonic()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    while any(p.poll() is None for p in procs):
        time.sleep(0.25)
        split.sample()
    published_s = time.monotonic() - started
    acked = sum(json.loads(p.stdout.read())["acked"] for p in procs if p.stdout is not None)
    rows, took = wait_stored(stack, base + 3 * acked, started, split)
    stored = (rows - base) / 3
    progress(f"{name}: {stored:,.0f} of {acked:,} messages stored in {took:.1f} s (published in {published_s:.1f} s)")
    return {
        "published_msg_s": acked / max(published_s, 1e-9),
        "acked": acked,
        "stored_msgs": stored,
        "lost": acked - stored,
        "stored_msg_s": stored / max(took, 1e-9),
        **split.figures(stored),
    }

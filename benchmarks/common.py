"""Shared pieces of the benchmarks: a private stack, child processes, figures."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ioc.cluster import remove_linked_clusters
from ioc.processes import Child, free_port, spawn
from ioc.settings import Settings
from ioc.up import Stack


def private_stack(name: str, *, devices: int = 0, fast_db: bool = False) -> Stack:
    """A database and broker of the benchmark's own (durable by default: fsync on), with LOAD devices."""
    root = Path(tempfile.mkdtemp(prefix=f"ioc-{name}-"))
    os.chmod(root, 0o755)
    stack = Stack(
        Settings(state_dir=root, db_port=free_port(), mqtt_port=free_port(), http_port=free_port()), fast_db=fast_db
    )
    stack.prepare_state(reset=False)
    stack.start_services()
    stack.load_data(None)
    if devices:
        assert stack.postgres is not None
        stack.postgres.psql(
            "INSERT INTO devices (device_id, kind, name) SELECT 'LOAD-' || lpad(i::text, 5, '0'), "
            f"'flood', 'load' FROM generate_series(1, {devices}) i"
        )
    return stack


def discard_stack(stack: Stack, root: Path) -> None:
    """Stop a private stack and delete it with its cluster (which lives under /var/lib/ioc, linked from root)."""
    stack.stop()
    remove_linked_clusters(root)
    shutil.rmtree(root, ignore_errors=True)  # a few GB of database per run


def ioc(stack: Stack, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
    """Start ``ioc <args>`` against the stack, logging under its state folder."""
    return spawn(
        name,
        [sys.executable, "-m", "ioc.cli", *args],
        stack.state_dir / "logs" / f"{name}.log",
        env={**stack.child_env(args[0]), **(env or {})},
    )


def scrape(port: int) -> str:
    """The text of a local Prometheus endpoint on ``port``."""
    return scrape_url(f"http://127.0.0.1:{port}/metrics")


def scrape_url(url: str) -> str:
    """The text of a Prometheus endpoint."""
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
        return resp.read().decode()


def histogram_quantile(text: str, name: str, q: float) -> float:
    """Estimate a quantile from a Prometheus histogram's cumulative buckets (linear within a bucket)."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    if total == 0:
        return float("nan")
    rank, prev_le, prev_n = q * total, 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / max(n - prev_n, 1e-9))
        prev_le, prev_n = le, n
    return prev_le


def median(values: list[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ms(values: list[float]) -> str:
    """p50 / p95 / p99 / max in milliseconds."""
    return (
        f"p50 {pct(values, 50) * 1000:.1f} ms, p95 {pct(values, 95) * 1000:.1f} ms, "
        f"p99 {pct(values, 99) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms (n={len(values)})"
    )

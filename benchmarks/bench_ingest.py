"""`make bench-ingest`: ioc's ingest against the load generator at QoS 1, then the naive baseline.

Everything runs on this machine: broker, database (fsync on), ingest and the load generator.
Prints offered and stored rates, loss and duplicates against the load manifest, publish-to-commit
latency p50/p99, the worker's CPU and RSS, and the ratio to one INSERT per message.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import histogram_quantile, ioc, median, private_stack, progress, scrape  # noqa: E402

from ioc.cluster import remove_linked_clusters  # noqa: E402
from ioc.processes import Child, free_port, spawn  # noqa: E402


def count_rows(stack) -> int:  # type: ignore[no-untyped-def]
    """Measurement rows stored so far."""
    return int(stack.postgres.psql("SELECT count(*) FROM measurements"))


def drive(stack, worker: Child, rate: int, seconds: int, devices: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Run the load generator while sampling stored rows and the worker's CPU/RSS; return figures."""
    manifest = stack.state_dir / f"manifest-{worker.name}.json"
    proc = psutil.Process(worker.proc.pid)
    proc.cpu_percent()
    load = ioc(
        stack,
        f"load-{worker.name}",
        "simulate",
        "--load",
        str(rate),
        "--devices",
        str(devices),
        "--duration",
        str(seconds),
        "--manifest",
        str(manifest),
    )
    started = time.monotonic()
    samples: list[tuple[float, int]] = [(started, count_rows(stack))]
    cpu: list[float] = []
    rss: list[int] = []
    while load.proc.poll() is None:
        time.sleep(1.0)
        samples.append((time.monotonic(), count_rows(stack)))
        cpu.append(proc.cpu_percent())
        rss.append(proc.memory_info().rss)
        if len(samples) % 10 == 0:
            progress(f"{worker.name}: {samples[-1][1] / 3:,.0f} messages stored after {samples[-1][0] - started:.0f} s")
    sent = json.loads(manifest.read_text())
    expected_rows = 3 * sent["acked"]
    drain_deadline = time.monotonic() + 120
    last_change = time.monotonic()
    while time.monotonic() < drain_deadline:
        n = count_rows(stack)
        if n != samples[-1][1]:
            last_change = time.monotonic()
        samples.append((time.monotonic(), n))
        if n >= expected_rows or time.monotonic() - last_change > 15:
            break
        time.sleep(0.5)
    stored_rows = samples[-1][1]
    done_at = next(t for t, n in samples if n == stored_rows)
    per_second = [
        (b[1] - a[1]) / 3 / (b[0] - a[0])
        for a, b in zip(samples, samples[1:], strict=False)
        if b[0] - a[0] > 0.5 and a[0] - started > 2 and b[0] < started + seconds
    ]
    return {
        "offered_msg_s": sent["rate_achieved"],
        "acked": sent["acked"],
        "stored_msgs": stored_rows / 3,
        "lost": sent["acked"] - stored_rows / 3,
        "elapsed_s": done_at - started,
        "stored_msg_s": stored_rows / 3 / max(done_at - started, 1e-9),
        "median_msg_s_per_second": median(per_second),
        "drain_after_load_s": max(0.0, done_at - started - seconds),
        "cpu_pct_median": median(cpu),
        "rss_mb_max": max(rss, default=0) / 2**20,
    }


def run_ours(stack, args: argparse.Namespace) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """ioc ingest under the load, with its lag quantiles and the duplicate rows it stored."""
    metrics_port = free_port()
    worker = ioc(
        stack,
        "ingest",
        "ingest",
        "--client-id",
        "bench",
        "--metrics-port",
        str(metrics_port),
        env={"IOC_INGEST_RATE_LIMIT_PER_S": "1000", "IOC_INGEST_BATCH_MAX": "5000"},
    )
    time.sleep(3)
    progress(f"ioc ingest: {args.rate:,} msg/s offered for {args.seconds} s at QoS 1 ({args.devices} devices)")
    ours = drive(stack, worker, args.rate, args.seconds, args.devices)
    text = scrape(metrics_port)
    ours["lag_p50_ms"] = 1000 * histogram_quantile(text, "ioc_ingest_lag_seconds", 0.50)
    ours["lag_p99_ms"] = 1000 * histogram_quantile(text, "ioc_ingest_lag_seconds", 0.99)
    rows = int(stack.postgres.psql("SELECT count(*) FROM measurements"))
    distinct = int(
        stack.postgres.psql("SELECT count(*) FROM (SELECT DISTINCT device_id, metric, time FROM measurements) d")
    )
    ours["duplicates"] = rows - distinct
    worker.stop()
    return ours


def run_naive(stack, args: argparse.Namespace) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The naive baseline (one INSERT per message) under the same load, on emptied tables."""
    stack.postgres.psql("TRUNCATE measurements, latest_values, rollup_dirty")
    progress(f"naive baseline: {args.rate:,} msg/s offered for {args.naive_seconds} s")
    naive_proc = spawn(
        "naive",
        [
            sys.executable,
            str(Path(__file__).with_name("naive_ingest.py")),
            stack.service_mqtt_url("ingest"),
            stack.database_url,
        ],
        stack.state_dir / "logs" / "naive.log",
    )
    time.sleep(2)
    naive = drive(stack, naive_proc, args.rate, args.naive_seconds, args.devices)
    naive_proc.stop()
    return naive


def report(ours: dict[str, float], naive: dict[str, float]) -> None:
    """Print both sets of figures and their ratio."""
    print("\n== ingest benchmark (broker, database with fsync, ingest and load generator on this machine) ==")
    for name, figures in (("ioc ingest", ours), ("naive INSERT per message", naive)):
        print(f"-- {name}")
        for key, value in figures.items():
            print(f"   {key:26s} {value:,.1f}")
    print(
        f"ratio (ioc / naive, stored msg/s over the load window): "
        f"{ours['stored_msg_s'] / max(naive['stored_msg_s'], 1e-9):.1f}x"
    )
    print(f"rows per second stored by ioc: {3 * ours['stored_msg_s']:,.0f} (3 metrics per message)")


def main() -> None:
    """Run both and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--naive-seconds", type=int, default=20)
    args = ap.parse_args()

    stack = private_stack("bench-ingest", devices=args.devices)
    try:
        ours = run_ours(stack, args)
        naive = run_naive(stack, args)
    finally:
        stack.stop()
        remove_linked_clusters(stack.state_dir)  # root's cluster lives under /var/lib/ioc
        shutil.rmtree(stack.state_dir, ignore_errors=True)  # a few GB of database per run
    report(ours, naive)


if __name__ == "__main__":
    main()

"""`make bench-ingest`: ioc's ingest at QoS 1 (acknowledge after commit), then beside the naive baseline.

Everything runs on this machine: broker, database (fsync on), the subscriber and the load. Three parts,
each run ``--runs`` times (medians printed, with the spread and the machine's load average):

1. Sustained: the raw-socket generator (`ioc simulate --load`) at ``--rate`` msg/s for ``--seconds``
   into ioc: stored rate, loss, duplicates, publish-to-commit p50/p99, and the CPU split (cores and
   microseconds per message of ingest, broker, database and load: which one is the limit).
2. Same load, two publishers, ioc and the naive baseline (benchmarks/naive_ingest.py: paho, an asyncpg
   pool of 10, one INSERT per message) in turn on emptied tables: ``--messages`` pre-generated readings
   from ``--publishers`` plain paho QoS 1 clients as fast as the broker takes them, and the raw
   generator at ``--rate`` for ``--compare-seconds`` (both subscribers get the same messages, and the
   naive one, acknowledging on arrival, stores them after the load ends). Prints msg/s and the ratio.
``--serve`` also runs `ioc serve` (no client connected) during part 1 and reports its CPU: the
server's idle cost under ingest load (the alert engine, the live state). ``--serve-rules FILE``: with
other alert rules, e.g. the shipped ones with ``evaluate_every_s: 0.01`` (every round full, as the engine
evaluated before its notified rounds) for an A/B.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import histogram_quantile, ioc, median, private_stack, progress, scrape  # noqa: E402
from cpu import load  # noqa: E402
from ingest_runs import CpuSplit, duplicates, paho_load, raw_load  # noqa: E402

from ioc.cluster import remove_linked_clusters  # noqa: E402
from ioc.processes import Child, free_port, spawn  # noqa: E402
from ioc.up import Stack, wait_http  # noqa: E402

Figures = dict[str, float]
INGEST_ENV = {"IOC_INGEST_RATE_LIMIT_PER_S": "1000", "IOC_INGEST_BATCH_MAX": "5000"}


def empty(stack: Stack) -> None:
    """Empty the tables a run fills, so each run starts alike."""
    assert stack.postgres is not None
    stack.postgres.psql("TRUNCATE measurements, latest_values, rollup_dirty, alerts, alert_history CASCADE")


def start_ioc(stack: Stack) -> tuple[Child, int]:
    """An ioc ingest worker, healthy; returns it and its metrics port."""
    port = free_port()
    worker = ioc(stack, "ingest", "ingest", "--client-id", "bench", "--metrics-port", str(port), env=INGEST_ENV)
    wait_http(f"http://127.0.0.1:{port}/healthz", 120, worker)
    return worker, port


def start_naive(stack: Stack) -> Child:
    """The naive baseline, subscribed."""
    script = str(Path(__file__).with_name("naive_ingest.py"))
    naive = spawn("naive", [sys.executable, script, stack.service_mqtt_url("ingest"), stack.database_url],
                  stack.state_dir / "logs" / "naive.log")  # fmt: skip
    time.sleep(3)  # paho has no readiness signal; the broker keeps nothing for a subscriber not yet there
    return naive


def split_for(stack: Stack, subscriber: Child, serve: Child | None = None) -> CpuSplit:
    """The roles whose CPU a run reports."""
    assert stack.postgres is not None and stack.postgres.child and stack.mosquitto and stack.mosquitto.child
    pids = {
        "ingest": [subscriber.proc.pid],
        "broker": [stack.mosquitto.child.proc.pid],
        "database": [stack.postgres.child.proc.pid],
    }
    if serve is not None:
        pids["serve"] = [serve.proc.pid]
    return CpuSplit(pids)


def sustained(stack: Stack, args: argparse.Namespace, run: int) -> Figures:
    """Part 1: the raw generator into ioc at ``--rate``, with lag quantiles and duplicates."""
    empty(stack)
    worker, port = start_ioc(stack)
    serve = None
    if args.serve:
        http = free_port()
        env = {"IOC_OPEN_IN_SERVE": "false"}
        if args.serve_rules:
            env["IOC_ALERT_RULES_FILE"] = str(args.serve_rules)
        serve = ioc(stack, "serve", "serve", "--port", str(http), env=env)
        wait_http(f"http://127.0.0.1:{http}/api/v1/health", 120, serve)
    progress(f"[1/{run}] ioc: raw generator at {args.rate:,} msg/s for {args.seconds} s ({load()})")
    figures = raw_load(stack, split_for(stack, worker, serve), args.rate, args.seconds, args.devices, f"ioc-{run}")
    text = scrape(port)
    figures["lag_p50_ms"] = 1000 * histogram_quantile(text, "ioc_ingest_lag_seconds", 0.50)
    figures["lag_p99_ms"] = 1000 * histogram_quantile(text, "ioc_ingest_lag_seconds", 0.99)
    figures["duplicates"] = duplicates(stack)
    if stack.postgres is not None:
        figures["alerts_opened"] = int(stack.postgres.psql("SELECT count(*) FROM alerts"))
    for child in (serve, worker):
        if child is not None:
            child.stop()
    return figures


def compared(stack: Stack, args: argparse.Namespace, run: int) -> dict[str, Figures]:
    """Part 2: ioc and the naive baseline under the paho publishers, then under the raw generator."""
    out: dict[str, Figures] = {}
    for name, start in (("ioc", lambda: start_ioc(stack)[0]), ("naive", lambda: start_naive(stack))):
        for publisher in ("paho", "raw"):
            empty(stack)
            subscriber = start()
            progress(f"[2/{run}] {name} under the {publisher} publisher ({load()})")
            split = split_for(stack, subscriber)
            if publisher == "paho":
                figures = paho_load(stack, split, args.messages, args.publishers, args.devices, f"{name}-{run}")
            else:
                figures = raw_load(stack, split, args.rate, args.compare_seconds, args.devices, f"{name}-raw-{run}")
            figures["duplicates"] = duplicates(stack)
            subscriber.stop()
            out[f"{name} ({publisher})"] = figures
    return out


def medians(runs: list[Figures]) -> dict[str, tuple[float, float, float]]:
    """Per figure: median, lowest, highest over the runs."""
    keys = dict.fromkeys(k for r in runs for k in r)
    return {k: (median([r[k] for r in runs if k in r]), min(r.get(k, 0) for r in runs), max(r.get(k, 0) for r in runs))
            for k in keys}  # fmt: skip


def show(title: str, runs: list[Figures]) -> None:
    """Print one set of figures: median [min..max] over the runs."""
    print(f"-- {title} (median [min..max] of {len(runs)})")
    for key, (mid, low, high) in medians(runs).items():
        print(f"   {key:26s} {mid:12,.1f}   [{low:,.1f}..{high:,.1f}]")


def serving(figures: Figures) -> float:
    """CPU microseconds per message of everything but the load: subscriber, broker, database."""
    return sum(figures.get(f"us_per_msg_{role}", 0.0) for role in ("ingest", "broker", "database"))


def report(ours: list[Figures], pairs: list[dict[str, Figures]], args: argparse.Namespace) -> None:
    """Print every part, the ratios and the CPU split's verdict."""
    print("\n== ingest benchmark (broker, database with fsync, subscriber and load on this machine) ==")
    print(f"{load()}; raw generator {args.rate:,} msg/s x {args.seconds} s, {args.devices} devices, 3 metrics each")
    if ours:
        show("1. ioc ingest, raw generator", ours)
        cores = {k[6:]: v[0] for k, v in medians(ours).items() if k.startswith("cores_")}
        limit = max(cores, key=lambda role: cores[role])
        print(f"   CPU split (cores): {', '.join(f'{r} {c:.2f}' for r, c in cores.items())}; busiest: {limit}")
    names = sorted({k for p in pairs for k in p})
    for name in names:
        show(f"2. {name}", [p[name] for p in pairs if name in p])
    for publisher in ("paho", "raw") if pairs else ():
        ratios = [p[f"ioc ({publisher})"]["stored_msg_s"] / max(p[f"naive ({publisher})"]["stored_msg_s"], 1e-9)
                  for p in pairs]  # fmt: skip
        spread = f" [{min(ratios):.1f}..{max(ratios):.1f}]" if len(ratios) > 1 else ""
        print(f"ratio ioc / naive, {publisher} publisher: {statistics.median(ratios):.1f}x{spread} (stored msg/s)")
        # On a shared machine the rates move with the neighbours; CPU per message does not (much): the ratio
        # of subscriber + broker + database microseconds per message is what the two cost on any machine.
        cost = [serving(p[f"naive ({publisher})"]) / max(serving(p[f"ioc ({publisher})"]), 1e-9) for p in pairs]
        print(f"   CPU per message, naive / ioc (subscriber + broker + database): {statistics.median(cost):.1f}x")


def main() -> None:
    """Run the parts and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=20_000, help="raw generator msg/s (part 1 and 2)")
    ap.add_argument("--seconds", type=int, default=60, help="part 1's load time")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=100_000, help="part 2: pre-generated messages per run")
    ap.add_argument("--publishers", type=int, default=4, help="part 2: paho publisher processes")
    ap.add_argument("--compare-seconds", type=int, default=5, help="part 2: raw generator time")
    ap.add_argument("--serve", action="store_true", help="part 1 with `ioc serve` running (no client)")
    ap.add_argument("--serve-rules", type=Path, help="the alert rules `ioc serve` runs (default: the shipped ones)")
    ap.add_argument("--only", choices=["sustained", "compare"], help="run one part")
    args = ap.parse_args()

    stack = private_stack("bench-ingest", devices=args.devices)
    ours: list[Figures] = []
    pairs: list[dict[str, Figures]] = []
    parts: list[tuple[str, Callable[[int], None]]] = [
        ("sustained", lambda run: ours.append(sustained(stack, args, run))),
        ("compare", lambda run: pairs.append(compared(stack, args, run))),
    ]
    try:
        for run in range(1, args.runs + 1):
            for name, part in parts:
                if args.only in (None, name):
                    part(run)
    finally:
        stack.stop()
        remove_linked_clusters(stack.state_dir)  # root's cluster lives under /var/lib/ioc
        shutil.rmtree(stack.state_dir, ignore_errors=True)  # a few GB of database per run
    report(ours, pairs, args)


if __name__ == "__main__":
    main()

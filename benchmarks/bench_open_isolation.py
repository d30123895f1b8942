"""Public load against the wall (``make bench-open-isolation``, issue 14's second bar): the wall's publish-to-screen
latency alone and with 200 public SensorThings clients, interleaved, medians of ``--rounds``; prints figures,
asserts nothing.

One stack: 2,000 msg/s flowing (``ioc simulate --load``), ``ioc serve`` for the wall (without the open data,
``IOC_OPEN_IN_SERVE=false``, as the deployment docs say) with 200 websocket clients on ``summary`` and ``zone:q1``,
and ``ioc open`` for the public at its default priority (``IOC_OPEN_NICE``). Each round runs every variant once,
in an order rotated per round: ``alone`` (no public client), ``public`` (200 clients of benchmarks/open_load.py on
``ioc open``), and the A/B variants asked for with ``--variants``: ``no-cache`` (a second ``ioc open`` with
``IOC_OPEN_CACHE_MS=0``), ``open-nice0`` and ``open-nice19`` (a second ``ioc open`` at that ``IOC_OPEN_NICE``),
``clients-nice0`` (the clients at the wall's priority).

The public clients run on this machine at nice 19 (``--client-nice``): on a 2-core box they stand in for clients on
other machines, which take none of the wall's CPU; at nice 19 they still take some (the CPU left over, and
switches). That is an approximation, said here and in the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
from bench_live import BENCH_PASSWORD, register  # noqa: E402
from common import discard_stack  # noqa: E402
from cpu import load  # noqa: E402
from live_latency import PROBE, latency_under_load, serve_with  # noqa: E402

from ioc import accounts  # noqa: E402
from ioc.db import create_pool  # noqa: E402
from ioc.processes import free_port  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.up import Stack, wait_http  # noqa: E402
from tests.support.live import login  # noqa: E402

BAR = 0.20  # the bar: the wall's p99 rises by less than 20 %
PROBES_PER_RUN = 10


def run_probes(run: int) -> list[str]:
    """The probe devices of one run: its own, since the wall keeps showing the last value of earlier runs' probes
    (sequence numbers from 1 again) and a client would take those for this run's readings."""
    return [f"{PROBE}-R{run:02d}-{i}" for i in range(PROBES_PER_RUN)]


async def register_probes(pool: asyncpg.Pool, runs: int) -> None:
    """Every run's probe devices, in zone q1 with the others; then tell the ingest and the wall."""
    rows = [(d, "q1") for run in range(runs) for d in run_probes(run)]
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone) VALUES ($1, 'flood', $1, $2) ON CONFLICT DO NOTHING", rows
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'bench')")


@dataclass(frozen=True)
class Variant:
    """One way to run part 1: which ``ioc open`` the public clients ask (None: no client) and at what nice."""

    name: str
    server: str | None
    client_nice: int


# The second `ioc open` of an A/B variant and its environment.
SERVERS = {
    "open": {},
    "open-nocache": {"IOC_OPEN_CACHE_MS": "0"},
    "open-nice0": {"IOC_OPEN_NICE": "0"},
    "open-nice19": {"IOC_OPEN_NICE": "19"},
}


def variants(names: list[str], client_nice: int) -> list[Variant]:
    """The variants of the run, ``alone`` and ``public`` first."""
    known = {
        "alone": Variant("alone", None, client_nice),
        "public": Variant("public", "open", client_nice),
        "no-cache": Variant("public, no cache", "open-nocache", client_nice),
        "open-nice0": Variant("public, ioc open at nice 0", "open-nice0", client_nice),
        "open-nice19": Variant("public, ioc open at nice 19", "open-nice19", client_nice),
        "clients-nice0": Variant("public, clients at nice 0", "open", 0),
    }
    return [known[n] for n in ["alone", "public", *names]]


def start_open(stack: Stack, name: str) -> str:
    """An ``ioc open`` with the variant's environment; its SensorThings root."""
    base = f"http://127.0.0.1:{free_port()}"
    saved = dict(os.environ)
    os.environ.update(SERVERS[name])
    try:
        child = stack.start_app(name, ["open", "--port", base.rsplit(":", 1)[1]])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    wait_http(f"{base}/open/health", 60, child)
    return f"{base}/sta/v1.1"


async def public_clients(base: str, args: argparse.Namespace, nice: int) -> asyncio.subprocess.Process:
    """The public clients (benchmarks/open_load.py) in a process of their own, until SIGTERM (at most 10 min)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("open_load.py")), "--base", base, "--clients",
        str(args.open_clients), "--seconds", "600", "--devices", str(args.load_devices), "--nice", str(nice), "--json",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def one_run(stack: Stack, base: str, token: str, args: argparse.Namespace, variant: Variant,
                  opens: dict[str, str], run: int) -> dict[str, Any]:  # fmt: skip
    """Part 1 of bench-live once, beside the variant's public clients; the wall's and the public's figures."""
    print(f"[run] {variant.name} ({load()})", flush=True)
    clients = None
    if variant.server is not None:
        clients = await public_clients(opens[variant.server], args, variant.client_nice)
    try:
        if clients is not None:
            await asyncio.sleep(args.warm_up)
        wall = await latency_under_load(
            base, token, stack.service_mqtt_url("simulate"), stack.database_url, args.clients, args.seconds,
            args.probe_interval, stack.children["serve"].proc.pid, run_probes(run), 0, f"{variant.name}: ",
        )  # fmt: skip
    except ValueError as exc:  # no probe reading reached a client (or was committed) in the run: no figures
        print(f"[run] {variant.name}: no figures ({exc}); the machine is too busy for this run", flush=True)
        wall = {}
    finally:
        if clients is not None and clients.returncode is None:
            clients.send_signal(signal.SIGTERM)
    public: dict[str, Any] = {}
    if clients is not None:
        out, _ = await clients.communicate()
        text = out.decode()
        print("\n".join(line for line in text.splitlines() if not line.startswith("[open] json ")), flush=True)
        public = json.loads(text.rsplit("[open] json ", 1)[1])
    return {"wall": wall, "public": public}


def med(values: list[float]) -> str:
    """Median [min..max]."""
    return f"{statistics.median(values):,.0f} [{min(values):,.0f}..{max(values):,.0f}]"


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    """Medians per variant, the p99's rise over ``alone`` and the public side."""
    # A run in which no probe reading reached a client in time (the machine too busy) has no wall figures; its
    # public figures still count.
    every = results
    results = {
        name: [r for r in runs if not math.isnan(r["wall"].get("p99 ms", math.nan))] for name, runs in every.items()
    }
    if not all(results.values()):
        print(f"\n== no wall figures for {[n for n, runs in results.items() if not runs]}: the machine was too busy")
        results = {name: runs or [{"wall": {"p50 ms": math.nan, "p99 ms": math.nan}}] for name, runs in results.items()}
    alone = statistics.median(r["wall"]["p99 ms"] for r in results["alone"])
    counts = sorted({len(runs) for runs in results.values()})
    print(f"\n== medians of {'/'.join(map(str, counts))} runs per variant (interleaved); {load()}")
    for name, runs in results.items():
        p50 = [r["wall"]["p50 ms"] for r in runs]
        p99 = [r["wall"]["p99 ms"] for r in runs]
        rise = statistics.median(p99) / alone - 1
        line = f"{name:34s} wall p50 {med(p50)} ms, p99 {med(p99)} ms ({rise:+.0%} on alone)"
        public = [r["public"] for r in every[name] if r["public"]]
        if public:
            served = [p["served"] / p["seconds"] for p in public]
            refused = [p["refused"] / p["seconds"] for p in public]
            p95 = [p["p95_ms"] for p in public if p["p95_ms"] is not None]
            cut = sum(p["timed_out"] for p in public)
            line += (f"; public served {statistics.median(served):.1f}/s, refused {statistics.median(refused):.1f}/s, "
                     f"p95 {med(p95) if p95 else '-'} ms, {cut} cut at the statement time-out")  # fmt: skip
        if name != "alone":
            line += f"  [bar +{BAR:.0%}: {'met' if rise < BAR else 'NOT met'}]"
        print(line)


async def measure(stack: Stack, base: str, token: str, args: argparse.Namespace) -> None:
    """The load, the ``ioc open`` servers, then ``--rounds`` rounds of every variant in a rotated order."""
    stack.start_app("simulate", ["simulate", "--load", str(args.rate), "--devices", str(args.load_devices),
                                 "--duration", str(4 * 3600)])  # fmt: skip
    chosen = variants(args.variants, args.client_nice)
    opens = {name: start_open(stack, name) for name in sorted({v.server for v in chosen if v.server})}
    await asyncio.sleep(5.0)
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in chosen}
    for round_ in range(args.rounds):
        order = chosen[round_ % len(chosen) :] + chosen[: round_ % len(chosen)]
        print(f"\n== round {round_ + 1} of {args.rounds}: {' | '.join(v.name for v in order)}", flush=True)
        for i, variant in enumerate(order):
            results[variant.name].append(await one_run(stack, base, token, args, variant, opens,
                                                       round_ * len(order) + i))  # fmt: skip
    report(results)


async def main(args: argparse.Namespace) -> None:
    """A private stack, the runs, the report."""
    os.environ["IOC_OPEN_IN_SERVE"] = "false"  # the wall's server without the open data
    root = Path(tempfile.mkdtemp(prefix="ioc-bench-open-isolation-"))
    os.chmod(root, 0o755)
    settings = Settings(
        state_dir=root, db_port=free_port(), mqtt_port=free_port(), http_port=free_port(), environment="test"
    )
    print(f"The {args.open_clients} public clients run on this machine at nice {args.client_nice}: an approximation "
          "of clients on other machines (they get the CPU only when nothing else wants it, but still cost some); "
          f"{load()}", flush=True)  # fmt: skip
    stack = Stack(settings, fast_db=True)
    stack.prepare_state(reset=False)
    await asyncio.to_thread(stack.start_services)
    try:
        fleet = settings.fleet_file if settings.fleet_file.exists() else None
        await asyncio.to_thread(stack.load_data, fleet)
        pool = await create_pool(stack.database_url, max_size=4)
        await register(pool, args.load_devices)
        await register_probes(pool, args.rounds * (2 + len(args.variants)))
        stack.start_app("ingest", ["ingest", "--client-id", "bench-ingest", "--metrics-port", "0"])
        base = f"http://127.0.0.1:{settings.http_port}"
        serve_with(stack, base, args.coalesce_ms)  # also lifts the per-address rate: every client is on 127.0.0.1
        async with pool.acquire() as conn:
            await accounts.create_user(conn, "bench-viewer", "viewer", BENCH_PASSWORD, actor="bench")
        await pool.close()
        token = await login(base, "bench-viewer", BENCH_PASSWORD)
        await measure(stack, base, token, args)
    finally:
        discard_stack(stack, root)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults are the issue's figures)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=2000, help="load messages per second")
    p.add_argument("--load-devices", type=int, default=1000)
    p.add_argument("--clients", type=int, default=200, help="the wall's websocket clients")
    p.add_argument("--open-clients", type=int, default=200, help="public SensorThings clients")
    p.add_argument("--client-nice", type=int, default=19, help="the public clients' nice (19: the lowest priority)")
    p.add_argument("--seconds", type=float, default=20, help="probe readings per run for this long")
    p.add_argument("--warm-up", type=float, default=5, help="seconds of public load before a run's measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--coalesce-ms", type=int, default=50, help="the wall's IOC_WS_COALESCE_MS")
    p.add_argument("--probe-interval", type=float, default=0.15, help="mean seconds between probe readings")
    p.add_argument(
        "--variants",
        type=lambda v: [x for x in v.split(",") if x],
        default=[],
        help="A/B variants beside alone and public: no-cache, open-nice0, open-nice19, clients-nice0",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
    sys.exit(0)

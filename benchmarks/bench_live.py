"""Live server benchmark (``make bench-live``): own stack, ingest and server; prints figures, asserts nothing.

1. 2,000 msg/s flowing (``ioc simulate --load``) while 200 websocket clients watch ``summary`` and
   ``zone:q1``: publish-to-websocket latency of a probe device in q1 whose reading is a sequence number
   (lean clients, see rawws.py, plus one websockets-library client as a cross-check).
   With ``--open-clients 200``: 200 public SensorThings clients run the open data bar queries meanwhile
   (benchmarks/open_load.py, in a process of its own): compare the latency with a run without them.
   The server's CPU with no client and with them (per client-second, per message sent: figures the
   neighbours' load moves less than latency). ``--live-coalesce-ms 200,50 --rounds 3`` runs part 1 for
   each interval in turn and prints medians; ``--baseline-tree DIR`` adds a server from another source
   folder (``git archive main | tar -x -C DIR``) to the rotation: a comparison within one run.
2. 1,000 connected clients (``--many 2000`` for issue 18's bar) on ``summary`` (coalesced to 2 updates/s):
   update rate and lag per client, the server's memory per idle client and CPU per client.
3. Readings history, 24 h at 1-minute buckets, on >= 10 million raw rows (plus their rollups): p50/p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
from common import discard_stack  # noqa: E402
from live_history import bulk_rows, readings_latency  # noqa: E402
from live_latency import BASELINE_PROBES, PROBE_DEVICES, live_rounds, many_clients, probe_publisher, serve_with  # noqa: E402

from ioc import accounts  # noqa: E402
from ioc.db import create_pool  # noqa: E402
from ioc.processes import free_port  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.up import Stack, wait_http  # noqa: E402
from tests.support.live import login  # noqa: E402

BENCH_PASSWORD = "benchmark viewer password"


async def register(pool: asyncpg.Pool, load_devices: int) -> None:
    """The probes (zone q1) and the load devices (spread over the zones), then tell the ingest."""
    zones = [r["zone_id"] for r in await pool.fetch("SELECT zone_id FROM zones ORDER BY zone_id")]
    rows = [(p, "q1") for p in PROBE_DEVICES + BASELINE_PROBES] + [
        (f"LOAD-{i:05d}", zones[i % len(zones)]) for i in range(1, load_devices + 1)
    ]
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone) VALUES ($1, 'flood', $1, $2) "
        "ON CONFLICT (device_id) DO NOTHING",
        rows,
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'bench')")


async def open_load(base: str, clients: int, seconds: float, devices: int) -> asyncio.subprocess.Process | None:
    """With ``clients``: that many public SensorThings clients (benchmarks/open_load.py) in a process of their
    own, so their work does not delay this process's websocket clients."""
    if not clients:
        return None
    print(f"[1] beside it: {clients} public open data clients for {seconds:.0f} s")
    return await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("open_load.py")), "--base", f"{base}/sta/v1.1",
        "--clients", str(clients), "--seconds", str(seconds), "--devices", str(devices),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def live_parts(stack: Stack, pool: asyncpg.Pool, base: str, token: str, args: argparse.Namespace) -> None:
    """Parts 1 and 2: the live rounds beside the load (and the open data clients), then many clients."""
    # Stopped after part 2 (--load alone stops after 10 s); on a busy machine the rounds take long.
    duration = str(4 * 3600)
    stack.start_app(
        "simulate",
        ["simulate", "--load", str(args.rate), "--devices", str(args.load_devices), "--duration", duration],
    )
    await asyncio.sleep(3.0)
    public_base = base
    if args.open_process:  # the open data in `ioc open`, at a lower CPU priority
        public_base = f"http://127.0.0.1:{free_port()}"
        child = stack.start_app("open", ["open", "--port", public_base.rsplit(":", 1)[1]])
        await asyncio.to_thread(wait_http, f"{public_base}/sta/v1.1", 60, child)
    public = await open_load(public_base, args.open_clients, args.seconds + 10, args.load_devices)
    await live_rounds(stack, base, token, args)
    if public is not None:
        out, _ = await public.communicate()
        print(out.decode().rstrip())
    rows = await pool.fetchval("SELECT count(*) FROM measurements")
    print(f"    ingest: {rows:,} rows ({rows // 3:,} load messages) stored so far; load still running")
    await asyncio.to_thread(stack.children.pop("serve").stop)
    serve_with(stack, base, args.coalesce_ms)  # the same database and sessions, 2 updates/s
    print(f"[2] server coalescing {args.coalesce_ms} ms per channel")
    # Load readings are a random walk: every channel changes all the time, as in a busy city.
    probe = asyncio.create_task(
        probe_publisher(stack.service_mqtt_url("simulate"), int(args.seconds * 4) + 60, 0.25, {})
    )
    await many_clients(base, token, args.many, args.seconds, stack.children["serve"].proc.pid)
    probe.cancel()
    stack.children.pop("simulate").stop()


async def main(args: argparse.Namespace) -> None:
    """Run the three parts against a private stack."""
    if args.open_process:
        os.environ["IOC_OPEN_IN_SERVE"] = "false"  # the wall's server without the open data
    root = Path(tempfile.mkdtemp(prefix="ioc-bench-live-"))
    os.chmod(root, 0o755)
    settings = Settings(
        state_dir=root, db_port=free_port(), mqtt_port=free_port(), http_port=free_port(), environment="test"
    )
    stack = Stack(settings, fast_db=True)
    stack.prepare_state(reset=False)
    await asyncio.to_thread(stack.start_services)  # it runs its own event loop
    try:
        fleet = settings.fleet_file if settings.fleet_file.exists() else None
        await asyncio.to_thread(stack.load_data, fleet)
        pool = await create_pool(stack.database_url, max_size=8)
        await register(pool, args.load_devices)
        stack.start_app("ingest", ["ingest", "--client-id", "bench-ingest", "--metrics-port", "0"])
        base = f"http://127.0.0.1:{settings.http_port}"
        serve_with(stack, base, args.live_coalesce_ms[0])
        async with pool.acquire() as conn:  # one viewer session serves every benchmark client
            await accounts.create_user(conn, "bench-viewer", "viewer", BENCH_PASSWORD, actor="bench")
        token = await login(base, "bench-viewer", BENCH_PASSWORD)
        print(f"stack up in {root}; server {base}")
        if not args.skip_live:
            await live_parts(stack, pool, base, token, args)
        if not args.skip_history:
            await bulk_rows(pool, args.rows, args.history_devices)
            await readings_latency(base, token, args.history_devices, args.requests)
        await pool.close()
    finally:
        discard_stack(stack, root)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults are the issue's figures)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=2000, help="load messages per second")
    p.add_argument("--load-devices", type=int, default=1000)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--many", type=int, default=1000, help="clients of part 2")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--coalesce-ms", type=int, default=500, help="part 2's IOC_WS_COALESCE_MS (500 = 2 updates/s)")
    p.add_argument(
        "--live-coalesce-ms",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[50],
        help="part 1's IOC_WS_COALESCE_MS (the default); several (200,50) run alternately, a same-run comparison",
    )
    p.add_argument("--rounds", type=int, default=1, help="part 1 this many times per interval; medians printed")
    p.add_argument("--baseline-tree", help="part 1 also with the server from this source folder, alternating")
    p.add_argument("--baseline-coalesce-ms", type=int, default=200, help="the baseline's IOC_WS_COALESCE_MS")
    p.add_argument("--paired", action="store_true", help="run the baseline server beside this one, not in turn")
    p.add_argument("--probe-interval", type=float, default=0.15, help="part 1: mean seconds between probe readings")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--history-devices", type=int, default=50)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--open-clients", type=int, default=0, help="part 1: public SensorThings clients beside it")
    p.add_argument("--open-process", action="store_true", help="serve the open data from `ioc open`, not `ioc serve`")
    p.add_argument("--skip-live", action="store_true")
    p.add_argument("--skip-history", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
    sys.exit(0)

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
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
import rawws  # noqa: E402
from common import histogram_quantile, scrape_url  # noqa: E402
from cpu import Meter, load, rss_bytes  # noqa: E402

from ioc import accounts  # noqa: E402
from ioc.cluster import remove_linked_clusters  # noqa: E402
from ioc.db import NOTIFY_CHANNEL, create_pool  # noqa: E402
from ioc.processes import free_port  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.up import Stack, wait_http  # noqa: E402
from tests.support.live import http_origin, login, session_headers  # noqa: E402

PROBE = "BENCH-PROBE"  # the probe devices are BENCH-PROBE-0 .. -9, all in zone q1
# Probe readings go round-robin over several devices, so each reports every few seconds as field
# devices do. One device sending twice a second would also measure the ingest's latest-value
# throttle (a key's latest value is written at most every 0.5 s), not the path of a reading.
PROBE_DEVICES = [f"{PROBE}-{i}" for i in range(10)]
BASELINE_PROBES = [f"{PROBE}-{i}" for i in range(10, 20)]  # --paired: the baseline server's own probes
BENCH_PASSWORD = "benchmark viewer password"


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


async def probe_publisher(
    mqtt_url: str,
    count: int,
    interval: float,
    sent: dict[int, float],
    devices: list[str] = PROBE_DEVICES,
    shift: int = 0,
) -> None:
    """Publish probe water levels = sequence numbers at QoS 1 over one connection, as devices do;
    the clock starts when the message is handed to the client library.

    The gaps are random (0.5 to 1.5 x ``interval``): at a fixed gap the probes would keep one phase
    against the server's coalescing period and all wait about the same, short or long."""
    gaps = random.Random(5)
    broker = urlsplit(mqtt_url)  # the simulators' account: anonymous clients are refused
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{os.getpid()}", protocol=mqtt.MQTTv5)
    client.username_pw_set(unquote(broker.username or ""), unquote(broker.password or ""))
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.loop_start()
    try:
        for seq in range(1, count + 1):
            payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "metrics": {"water_level_cm": float(seq)}})
            sent[seq] = time.monotonic()
            device = devices[(seq + shift) % len(devices)]  # a shift per round: no device repeats its last value
            client.publish(f"ioc/v1/flood/{device}/telemetry", payload, qos=1)
            await asyncio.sleep(interval * gaps.uniform(0.5, 1.5))
    finally:
        client.disconnect()
        client.loop_stop()


def live_socket(url: str, token: str, open_timeout: float) -> Any:
    """A websocket client on the live endpoint, with the viewer's session and the page's Origin."""
    return connect(
        url,
        max_size=32 * 1024 * 1024,
        open_timeout=open_timeout,
        origin=http_origin(url),  # type: ignore[arg-type]
        additional_headers=session_headers(token),
    )


def probe_values(text: bytes | str, probes: list[str] = PROBE_DEVICES) -> list[int]:
    """The water levels (sequence numbers) of ``probes`` in one zone-channel message (none in others)."""
    msg = json.loads(text)
    if not str(msg.get("channel")).startswith("zone:"):  # the summary's "devices" holds counts, not devices
        return []
    return [
        int(d["latest"]["water_level_cm"]["value"])
        for d in msg["data"].get("devices", [])
        if d.get("device_id") in probes and (d.get("latest") or {}).get("water_level_cm", {}).get("value") is not None
    ]


async def reference_watcher(
    url: str,
    token: str,
    channels: list[str],
    seen: dict[int, float],
    stop: asyncio.Event,
    probes: list[str] = PROBE_DEVICES,
) -> None:
    """A client on the websockets library (what an integrator would use): a cross-check of the lean ones."""
    async with live_socket(url, token, 60) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": channels}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                continue
            if PROBE in raw:
                for value in probe_values(raw, probes):
                    seen.setdefault(value, time.monotonic())


async def latency_under_load(
    base: str,
    token: str,
    mqtt_url: str,
    database_url: str,
    clients: int,
    seconds: float,
    interval: float,
    server: int,
    probes: list[str] = PROBE_DEVICES,
    shift: int = 0,
    label: str = "",
) -> dict[str, float]:
    """Part 1: probe latency seen by ``clients`` websocket clients while the load runs.

    The clients are lean (rawws: arrival stamped as the bytes come in, JSON parsed after the run), so
    the figures are the server's and not this process's backlog; one websockets-library client runs
    beside them as a cross-check. The figures are printed together at the end (two may run at once).
    """
    out: list[str] = []
    url = base.replace("http://", "ws://") + "/ws/v1/live"
    headers = {"Origin": http_origin(url), **session_headers(token)}
    subscribe = json.dumps({"op": "subscribe", "channels": ["summary", "zone:q1"]}).encode()
    meter = Meter(server).start()  # the server's cost under the load with no client, then with them
    await asyncio.sleep(5.0)
    idle = meter.share()
    lean = []
    for _ in range(clients):
        client = await rawws.connect(url, headers, PROBE.encode())
        client.send(0x1, subscribe)
        lean.append(client)
    stop = asyncio.Event()
    reference_seen: dict[int, float] = {}
    reference = asyncio.create_task(reference_watcher(url, token, ["summary", "zone:q1"], reference_seen, stop, probes))
    await asyncio.sleep(3.0)
    sent: dict[int, float] = {}
    committed: dict[int, float] = {}

    def on_commit(conn: object, pid: int, channel: str, payload: str) -> None:
        # The ingest's commit notice names the probe: the newest probe reading is now in the database.
        if sent and probes[(max(sent) + shift) % len(probes)] in payload:
            committed.setdefault(max(sent), time.monotonic())

    listener = await asyncpg.connect(database_url)
    await listener.add_listener(NOTIFY_CHANNEL, on_commit)
    counted = sum(c.messages for c in lean)
    started = time.monotonic()
    meter.start()
    await probe_publisher(mqtt_url, int(seconds / interval), interval, sent, probes, shift)
    await asyncio.sleep(3.0)
    elapsed = time.monotonic() - started
    busy = meter.share()
    received = sum(c.messages for c in lean) - counted
    stop.set()
    for client in lean:
        client.close()
    await asyncio.gather(reference, return_exceptions=True)
    await listener.close()
    seen: dict[int, list[float]] = {}
    for client in lean:
        first: dict[int, float] = {}
        for at, text in client.kept:
            for value in probe_values(text, probes):
                first.setdefault(value, at)
        for value, at in first.items():
            seen.setdefault(value, []).append(at)
    latencies = [t - sent[seq] for seq, times in seen.items() if seq in sent for t in times]
    first_client = [min(times) - sent[seq] for seq, times in seen.items() if seq in sent]
    delivered = sum(len(t) for s, t in seen.items() if s in sent)
    out.append(
        f"[1] {label}{clients} clients on summary + zone:q1 under load, {len(sent)} probes: "
        f"{delivered}/{len(sent) * clients} probe deliveries; {received / elapsed:.0f} msgs/s received"
    )
    if latencies:
        out.append(f"    publish -> websocket (all clients): {ms(latencies)}")
        out.append(f"    publish -> websocket (first client): {ms(first_client)}")
        out.append(f"    of which publish -> committed (ingest): {ms([committed[q] - sent[q] for q in committed])}")
        out.append(
            "    and committed -> websocket (live server, first client): "
            f"{ms([min(seen[q]) - committed[q] for q in committed if q in seen])}"
        )
    text = await asyncio.to_thread(scrape_url, f"{base}/metrics")
    out.append(
        "    server's own figures: live refresh (database read + diff) "
        f"p50 {histogram_quantile(text, 'ioc_live_refresh_seconds', 0.5) * 1000:.1f} ms, "
        f"p95 {histogram_quantile(text, 'ioc_live_refresh_seconds', 0.95) * 1000:.1f} ms"
    )
    out.append(
        f"    server CPU: {idle:.2f} cores with no client, {busy:.2f} with them: "
        f"{(busy - idle) / clients * 1000:.2f} ms CPU per client-second, "
        f"{(busy - idle) * elapsed / max(received, 1) * 1e6:.0f} µs per message sent; {load()}"
    )
    reference_lat = [t - sent[q] for q, t in reference_seen.items() if q in sent]
    if reference_lat:
        out.append(f"    cross-check, one websockets-library client beside them: {ms(reference_lat)}")
    print("\n".join(out), flush=True)
    return {
        "p50 ms": pct(latencies, 50) * 1000,
        "p99 ms": pct(latencies, 99) * 1000,
        "lost": len(sent) * clients - delivered,
        "CPU ms per client-s": (busy - idle) / clients * 1000,
        "server cores": busy,
    }


async def live_rounds(stack: Stack, base: str, token: str, args: argparse.Namespace) -> None:
    """Part 1 ``--rounds`` times for each ``--live-coalesce-ms`` (and ``--baseline-tree``), alternating; medians.

    With ``--paired``, the baseline server runs beside this one on the same database and load, each with its
    own clients and probes, measured in the same seconds: the fairest comparison on a shared machine.
    """
    variants = [("this tree", c, None) for c in args.live_coalesce_ms]
    if args.baseline_tree and not args.paired:
        variants.append((f"baseline {args.baseline_tree}", args.baseline_coalesce_ms, args.baseline_tree))
    baseline = ""
    if args.paired:
        baseline = f"http://127.0.0.1:{free_port()}"
        serve_with(stack, baseline, args.baseline_coalesce_ms, args.baseline_tree, name="serve-baseline")
    results: dict[str, list[dict[str, float]]] = {}

    def run(at: str, server: str, probes: list[str], shift: int, label: str) -> Any:
        return latency_under_load(
            at,
            token,
            stack.service_mqtt_url("simulate"),
            stack.database_url,
            args.clients,
            args.seconds,
            args.probe_interval,
            stack.children[server].proc.pid,
            probes,
            shift,
            label,
        )

    for round_ in range(args.rounds):
        for name, coalesce_ms, tree in variants:
            label = f"{name} at {coalesce_ms} ms"
            if round_ or len(results) or tree:
                await asyncio.to_thread(stack.children.pop("serve").stop)
                serve_with(stack, base, coalesce_ms, tree)
            print(f"[1] {label} per channel (round {round_ + 1} of {args.rounds})")
            shift = round_ * len(variants) + variants.index((name, coalesce_ms, tree))
            jobs = [run(base, "serve", PROBE_DEVICES, shift, f"{label}: ")]
            if args.paired:
                other = f"baseline {args.baseline_tree} at {args.baseline_coalesce_ms} ms, beside {label}"
                jobs.append(run(baseline, "serve-baseline", BASELINE_PROBES, shift, f"{other}: "))
            for key, figures in zip([label, f"baseline beside {label}"], await asyncio.gather(*jobs), strict=False):
                results.setdefault(key, []).append(figures)
    if args.paired:
        await asyncio.to_thread(stack.children.pop("serve-baseline").stop)
    if len(results) > 1 or args.rounds > 1:
        for label, runs in results.items():
            summary = ", ".join(
                f"{key} {statistics.median(r[key] for r in runs):.2f} "
                f"[{min(r[key] for r in runs):.2f}..{max(r[key] for r in runs):.2f}]"
                for key in runs[0]
            )
            print(f"[1] medians of {len(runs)}, {label}: {summary}")


async def many_clients(base: str, token: str, clients: int, seconds: float, server: int) -> None:
    """Part 2: ``clients`` lean connections on summary; rate and lag (arrival - server timestamp), the server's
    memory per idle client (connected, nothing watched) and its CPU per client."""
    url = base.replace("http://", "ws://") + "/ws/v1/live"
    headers = {"Origin": http_origin(url), **session_headers(token)}
    subscribe = json.dumps({"op": "subscribe", "channels": ["summary"]}).encode()
    meter = Meter(server).start()
    await asyncio.sleep(5.0)
    alone = meter.share()
    rss0 = rss_bytes(server)
    conns = []
    for i in range(clients):
        conns.append(await rawws.connect(url, headers, b'"type":"delta"', timeout=120, clock=time.time))
        if i % 100 == 99:
            await asyncio.sleep(0.2)
    await asyncio.sleep(3.0)
    idle = (rss_bytes(server) - rss0) / clients
    for client in conns:
        client.send(0x1, subscribe)
    await asyncio.sleep(5.0)
    start = time.time()
    meter.start()
    await asyncio.sleep(seconds)
    end = time.time()
    busy = meter.share()
    for client in conns:
        client.close()
    counts, lags = [], []
    for client in conns:
        window = [(at, text) for at, text in client.kept if start <= at < end]
        counts.append(len(window))
        for at, text in window:
            sent = datetime.fromisoformat(json.loads(text)["ts"].replace("Z", "+00:00")).timestamp()
            lags.append(at - sent)
    rates = [c / seconds for c in counts]
    print(
        f"[2] {clients} clients on summary: updates/s per client mean {statistics.mean(rates):.2f}, "
        f"min {min(rates):.2f}; lag (arrival - server ts): {ms(lags) if lags else 'no updates'}"
    )
    print(
        f"    server memory per idle client {idle / 1024:.0f} KiB (RSS {rss0 / 2**20:.0f} MiB before them); "
        f"CPU {alone:.2f} cores before them, {busy:.2f} with them: "
        f"{(busy - alone) / clients * 1000:.2f} ms per client-second; {load()}"
    )


async def bulk_rows(pool: asyncpg.Pool, rows: int, devices: int) -> None:
    """>= ``rows`` raw rows over ``devices`` history devices at 10 s, and their 1-minute rollups."""
    per_device = rows // devices + 1
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(seconds=10 * per_device)
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone) VALUES ($1, 'flood', $1, 'q1') ON CONFLICT DO NOTHING",
        [(f"HIST-{i:03d}",) for i in range(devices)],
    )
    started = time.monotonic()

    async def one(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO measurements (time, device_id, metric, part, value) "
                "SELECT t, $1, 'water_level_cm', '', 10 + 5 * sin(extract(epoch FROM t) / 3600) "
                "FROM generate_series($2::timestamptz, $3::timestamptz, interval '10 seconds') t",
                f"HIST-{i:03d}",
                start,
                end - timedelta(seconds=10),
            )
            await conn.execute(
                "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
                "SELECT time_bucket('1 minute', time), device_id, metric, part, count(*), sum(value), "
                "min(value), max(value) FROM measurements WHERE device_id = $1 GROUP BY 1, 2, 3, 4 "
                "ON CONFLICT DO NOTHING",
                f"HIST-{i:03d}",
            )

    sem = asyncio.Semaphore(4)

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(limited(i) for i in range(devices)))
    total = await pool.fetchval("SELECT count(*) FROM measurements")
    await pool.execute("ANALYZE measurements; ANALYZE rollups_1m")
    print(f"[3] generated {total:,} raw rows (+ rollups) in {time.monotonic() - started:.0f} s")


async def readings_latency(base: str, token: str, devices: int, requests: int) -> None:
    """Part 3: 24 h at 1-minute buckets, and 1 h raw, through the REST API."""
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=session_headers(token)) as http:
        for bucket, span in (("1m", timedelta(hours=24)), ("raw", timedelta(hours=1))):
            times = []
            points = 0
            for i in range(requests):
                end = datetime.now(UTC) - timedelta(hours=i % 48)
                params = {
                    "metric": "water_level_cm",
                    "from": (end - span).isoformat(),
                    "to": end.isoformat(),
                    "bucket": bucket,
                }
                t0 = time.perf_counter()
                resp = await http.get(f"/api/v1/devices/HIST-{i % devices:03d}/readings", params=params)
                times.append(time.perf_counter() - t0)
                points = len(resp.json()["points"])
            print(f"    readings {span} at {bucket} ({points} points): {ms(times)}")


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


def serve_with(stack: Stack, base: str, coalesce_ms: int, tree: str | None = None, name: str = "serve") -> None:
    """Start ``ioc serve`` with the given per-channel coalescing interval and wait until it answers.

    With ``tree``: the server's code from that folder (``python -m`` looks in the working directory first),
    for a same-run comparison with another version (``git archive main | tar -x -C DIR``)."""
    os.environ["IOC_WS_COALESCE_MS"] = str(coalesce_ms)
    # The public clients of --open-clients all come from this host: one address, so no per-address limit here.
    os.environ.update(
        {"IOC_OPEN_RATE_PER_MINUTE": "100000000", "IOC_OPEN_RATE_BURST": "100000000", "IOC_OPEN_BULK_JOB": "false"}
    )
    here = os.getcwd()
    os.chdir(tree or here)
    try:
        serve = stack.start_app(name, ["serve", "--port", base.rsplit(":", 1)[1]])
    finally:
        os.chdir(here)
    wait_http(f"{base}/api/v1/health", 60, serve)


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
        if not args.skip_history:
            await bulk_rows(pool, args.rows, args.history_devices)
            await readings_latency(base, token, args.history_devices, args.requests)
        await pool.close()
    finally:
        stack.stop()
        remove_linked_clusters(root)  # root's cluster lives under /var/lib/ioc
        shutil.rmtree(root, ignore_errors=True)  # a few GB of database per run


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

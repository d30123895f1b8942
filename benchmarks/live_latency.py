"""bench-live part 1: publish-to-websocket latency of probe readings under load, and many clients at once."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import paho.mqtt.client as mqtt
import rawws
from common import histogram_quantile, ms, pct, scrape_url
from cpu import Meter, load, rss_bytes
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect

from ioc.db import NOTIFY_CHANNEL
from ioc.processes import free_port
from ioc.up import Stack, wait_http
from tests.support.live import http_origin, session_headers

PROBE = "BENCH-PROBE"  # the probe devices are BENCH-PROBE-0 .. -9, all in zone q1
# Probe readings go round-robin over several devices, so each reports every few seconds as field
# devices do. One device sending twice a second would also measure the ingest's latest-value
# throttle (a key's latest value is written at most every 0.5 s), not the path of a reading.
PROBE_DEVICES = [f"{PROBE}-{i}" for i in range(10)]
BASELINE_PROBES = [f"{PROBE}-{i}" for i in range(10, 20)]  # --paired: the baseline server's own probes
BENCH_PASSWORD = "benchmark viewer password"


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


@dataclass(frozen=True)
class Run:
    """What one part-1 run measured: send, commit and arrival times per probe, messages, CPU shares."""

    sent: dict[int, float]
    committed: dict[int, float]
    seen: dict[int, list[float]]  # probe -> the time each lean client first had it
    reference_seen: dict[int, float]
    received: int
    elapsed: float
    idle: float
    busy: float


def first_arrivals(lean: list[Any], probes: list[str]) -> dict[int, list[float]]:
    """Per probe reading, when each lean client first received it (stamped as its bytes came in)."""
    seen: dict[int, list[float]] = {}
    for client in lean:
        first: dict[int, float] = {}
        for at, text in client.kept:
            for value in probe_values(text, probes):
                first.setdefault(value, at)
        for value, at in first.items():
            seen.setdefault(value, []).append(at)
    return seen


async def report(base: str, label: str, clients: int, run: Run) -> dict[str, float]:
    """Print part 1's figures for one run (with the server's own from /metrics) and return the headline ones."""
    sent, committed, seen, reference_seen = run.sent, run.committed, run.seen, run.reference_seen
    received, elapsed, idle, busy = run.received, run.elapsed, run.idle, run.busy
    out: list[str] = []
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
        to_commit = [committed[q] - sent[q] for q in committed]
        to_socket = [min(seen[q]) - committed[q] for q in committed if q in seen]
        if to_commit and to_socket:  # a starved machine may miss every commit notice
            out.append(f"    of which publish -> committed (ingest): {ms(to_commit)}")
            out.append(f"    and committed -> websocket (live server, first client): {ms(to_socket)}")
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
    seen = first_arrivals(lean, probes)
    run = Run(sent, committed, seen, reference_seen, received, elapsed, idle, busy)
    return await report(base, label, clients, run)


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

"""Parts 1 and 2 of bench_live: probe latency through the live path under load, and many clients on summary."""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import paho.mqtt.client as mqtt
import rawws
from common import histogram_quantile, ms, scrape_url
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect

from ioc.db import NOTIFY_CHANNEL
from tests.support.live import http_origin, session_headers

PROBE = "BENCH-PROBE"  # the probe devices are BENCH-PROBE-0 .. -9, all in zone q1
# Probe readings go round-robin over several devices, so each reports every few seconds as field
# devices do. One device sending twice a second would also measure the ingest's latest-value
# throttle (a key's latest value is written at most every 0.5 s), not the path of a reading.
PROBE_DEVICES = [f"{PROBE}-{i}" for i in range(10)]



async def probe_publisher(mqtt_url: str, count: int, interval: float, sent: dict[int, float]) -> None:
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
            device = PROBE_DEVICES[seq % len(PROBE_DEVICES)]
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


def probe_values(text: bytes | str) -> list[int]:
    """The probe's water levels (its sequence numbers) in one zone-channel message (none in others)."""
    msg = json.loads(text)
    if not str(msg.get("channel")).startswith("zone:"):  # the summary's "devices" holds counts, not devices
        return []
    return [
        int(d["latest"]["water_level_cm"]["value"])
        for d in msg["data"].get("devices", [])
        if str(d.get("device_id")).startswith(PROBE)
        and (d.get("latest") or {}).get("water_level_cm", {}).get("value") is not None
    ]


async def reference_watcher(
    url: str, token: str, channels: list[str], seen: dict[int, float], stop: asyncio.Event
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
                for value in probe_values(raw):
                    seen.setdefault(value, time.monotonic())


async def latency_under_load(
    base: str, token: str, mqtt_url: str, database_url: str, clients: int, seconds: float, interval: float
) -> None:
    """Part 1: probe latency seen by ``clients`` websocket clients while the load runs.

    The clients are lean (rawws: arrival stamped as the bytes come in, JSON parsed after the run), so
    the figures are the server's and not this process's backlog; one websockets-library client runs
    beside them as a cross-check.
    """
    url = base.replace("http://", "ws://") + "/ws/v1/live"
    headers = {"Origin": http_origin(url), **session_headers(token)}
    subscribe = json.dumps({"op": "subscribe", "channels": ["summary", "zone:q1"]}).encode()
    lean = []
    for _ in range(clients):
        client = await rawws.connect(url, headers, PROBE.encode())
        client.send(0x1, subscribe)
        lean.append(client)
    stop = asyncio.Event()
    reference_seen: dict[int, float] = {}
    reference = asyncio.create_task(reference_watcher(url, token, ["summary", "zone:q1"], reference_seen, stop))
    await asyncio.sleep(3.0)
    sent: dict[int, float] = {}
    committed: dict[int, float] = {}

    def on_commit(conn: object, pid: int, channel: str, payload: str) -> None:
        # The ingest's commit notice names the probe: the newest probe reading is now in the database.
        if sent and PROBE_DEVICES[max(sent) % len(PROBE_DEVICES)] in payload:
            committed.setdefault(max(sent), time.monotonic())

    listener = await asyncpg.connect(database_url)
    await listener.add_listener(NOTIFY_CHANNEL, on_commit)
    counted = sum(c.messages for c in lean)
    started = time.monotonic()
    await probe_publisher(mqtt_url, int(seconds / interval), interval, sent)
    await asyncio.sleep(3.0)
    elapsed = time.monotonic() - started
    received = sum(c.messages for c in lean) - counted
    stop.set()
    for client in lean:
        client.close()
    await asyncio.gather(reference, return_exceptions=True)
    await listener.close()
    await report_latency(base, clients, lean, sent, committed, reference_seen, received / elapsed)


async def report_latency(
    base: str,
    clients: int,
    lean: list[rawws.RawClient],
    sent: dict[int, float],
    committed: dict[int, float],
    reference_seen: dict[int, float],
    rate: float,
) -> None:
    """Part 1's figures: publish to websocket (every client, the first), split at the commit; the cross-check."""
    seen: dict[int, list[float]] = {}
    for client in lean:
        first: dict[int, float] = {}
        for at, text in client.kept:
            for value in probe_values(text):
                first.setdefault(value, at)
        for value, at in first.items():
            seen.setdefault(value, []).append(at)
    latencies = [t - sent[seq] for seq, times in seen.items() if seq in sent for t in times]
    first_client = [min(times) - sent[seq] for seq, times in seen.items() if seq in sent]
    delivered = sum(len(t) for s, t in seen.items() if s in sent)
    print(
        f"[1] {clients} clients on summary + zone:q1 under load, {len(sent)} probes: "
        f"{delivered}/{len(sent) * clients} probe deliveries; {rate:.0f} msgs/s received"
    )
    if latencies:
        print(f"    publish -> websocket (all clients): {ms(latencies)}")
        print(f"    publish -> websocket (first client): {ms(first_client)}")
        print(f"    of which publish -> committed (ingest): {ms([committed[q] - sent[q] for q in committed])}")
        print(
            "    and committed -> websocket (live server, first client): "
            f"{ms([min(seen[q]) - committed[q] for q in committed if q in seen])}"
        )
    text = await asyncio.to_thread(scrape_url, f"{base}/metrics")
    print(
        "    server's own figures: live refresh (database read + diff) "
        f"p50 {histogram_quantile(text, 'ioc_live_refresh_seconds', 0.5) * 1000:.1f} ms, "
        f"p95 {histogram_quantile(text, 'ioc_live_refresh_seconds', 0.95) * 1000:.1f} ms"
    )
    reference_lat = [t - sent[q] for q, t in reference_seen.items() if q in sent]
    if reference_lat:
        print(f"    cross-check, one websockets-library client beside them: {ms(reference_lat)}")


async def many_clients(base: str, token: str, clients: int, seconds: float) -> None:
    """Part 2: ``clients`` lean connections on summary; rate and lag (arrival - server timestamp)."""
    url = base.replace("http://", "ws://") + "/ws/v1/live"
    headers = {"Origin": http_origin(url), **session_headers(token)}
    subscribe = json.dumps({"op": "subscribe", "channels": ["summary"]}).encode()
    conns = []
    for i in range(clients):
        client = await rawws.connect(url, headers, b'"type":"delta"', timeout=120, clock=time.time)
        client.send(0x1, subscribe)
        conns.append(client)
        if i % 100 == 99:
            await asyncio.sleep(0.2)
    await asyncio.sleep(5.0)
    start = time.time()
    await asyncio.sleep(seconds)
    end = time.time()
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

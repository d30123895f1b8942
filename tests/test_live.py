"""The websocket end to end: MQTT -> ingest -> TimescaleDB -> NOTIFY -> hub -> websocket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from dashboards import queries
from dashboards.live_state import LiveState
from ioc.db import REGISTRY_CHANNEL, commit_notices
from ioc.kinds import load_kinds
from ioc.processes import free_port
from ioc.up import wait_http
from tests.support.auth import PASSWORD
from tests.support.live import LiveClient, StuckClient, login, session_headers
from tests.support.stack import Broker, mosquitto_pub, until

pytestmark = pytest.mark.usefixtures("ingest", "live_devices")

FLOOD = "T-LIVE-FL1"
FLOOD2 = "T-LIVE-FL2"
ZONE = "q10"


@pytest.fixture(scope="module")
def servers(run_ioc, tmp_path_factory) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Two API servers side by side (fast coalescing, 1 s heartbeats, no alert rules); the second
    offers compressed frames (IOC_WS_COMPRESSION), so every test on both covers both."""
    rules = Path(tmp_path_factory.mktemp("live")) / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")
    env = {"IOC_WS_COALESCE_MS": "100", "IOC_WS_HEARTBEAT_S": "1", "IOC_ALERT_RULES_FILE": str(rules)}
    children, bases = [], []
    for i in range(2):
        port = free_port()
        env_i = {**env, "IOC_WS_COMPRESSION": "true"} if i == 1 else env
        children.append(run_ioc(f"serve-live-{i}", "serve", "--port", str(port), env=env_i))
        bases.append(f"http://127.0.0.1:{port}")
    for child, base in zip(children, bases, strict=True):
        wait_http(f"{base}/api/v1/health", 30, child)
    yield bases
    for child in children:
        child.stop()


@pytest.fixture(scope="module")
async def live_devices(pool: asyncpg.Pool) -> list[str]:
    """Our own flood devices in zone q10, known to the ingest."""
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone, metadata) VALUES ($1, 'flood', $1, $2, '{}') "
        "ON CONFLICT (device_id) DO NOTHING",
        [(FLOOD, ZONE), (FLOOD2, ZONE)],
    )
    # No wait for the reload: the ingest looks a device it has not loaded up in the database (lookup_device).
    await pool.execute("SELECT pg_notify($1, 'test')", REGISTRY_CHANNEL)
    return [FLOOD, FLOOD2]


@pytest.fixture(scope="module")
async def token(servers: list[str], people: dict[str, str]) -> str:
    """A viewer's session (sessions live in the database, so it is good on both servers)."""
    return await login(servers[0], people["viewer"], PASSWORD)


def ws_url(base: str) -> str:
    """The live websocket of a server."""
    return base.replace("http://", "ws://") + "/ws/v1/live"


def publish_level(broker: Broker, device_id: str, level: float) -> float:
    """Publish one water level reading now; returns the publish time (monotonic)."""
    payload = {
        "ts": datetime.now(UTC).isoformat(),
        "metrics": {"water_level_cm": level, "rainfall_mm_h": 5.0},
    }
    started = time.monotonic()
    mosquitto_pub(broker, f"ioc/v1/flood/{device_id}/telemetry", json.dumps(payload).encode())
    return started


def level_of(client: LiveClient, device_id: str) -> float | None:
    """The water level a client currently shows for a device (device channel)."""
    return client.states[f"device:{device_id}"]["device"]["latest"]["water_level_cm"]["value"]  # type: ignore[no-any-return]


async def test_reading_arrives_as_delta_on_every_channel(servers: list[str], broker: Broker, token: str) -> None:
    channels = [f"device:{FLOOD}", f"zone:{ZONE}", "kind:flood", "summary"]
    async with LiveClient(ws_url(servers[0]), token) as client:
        await client.subscribe(*channels)
        await client.wait_for(lambda c: all(ch in c.states for ch in channels), what="four snapshots")
        assert [m["type"] for m in client.messages] == ["snapshot"] * 4
        assert all(m["ts"].endswith("Z") for m in client.messages)
        started = publish_level(broker, FLOOD, 27.5)
        await client.wait_for(lambda c: level_of(c, FLOOD) == 27.5, what="the device delta")
        latency = time.monotonic() - started
        device_delta = next(m for m in client.messages if m["channel"] == f"device:{FLOOD}" and m["type"] == "delta")
        assert "name" not in device_delta["data"]["device"]  # only what changed
        assert client.states[f"device:{FLOOD}"]["device"]["level"] == "warning"
        zone = await client.wait_for(
            lambda c: (
                next(d for d in c.states[f"zone:{ZONE}"]["devices"] if d["device_id"] == FLOOD)["level"] == "warning"
                and c.states[f"zone:{ZONE}"]
            ),
            what="the zone delta",
        )
        assert zone["flood"]["max_level_cm"] >= 27.5 and zone["zone"]["zone_id"] == ZONE
        await client.wait_for(
            lambda c: any(
                d["device_id"] == FLOOD and d["latest"]["water_level_cm"]["value"] == 27.5
                for d in c.states["kind:flood"]["devices"]
            ),
            what="the kind delta",
        )
        await client.wait_for(lambda c: c.states["summary"]["flood"]["points_warning"] >= 1, what="summary delta")
    assert latency < 2.0, f"publish to websocket took {latency:.2f} s"


async def test_errors_keep_the_connection_open(servers: list[str], token: str) -> None:
    async with LiveClient(ws_url(servers[0]), token) as client:
        await client.subscribe("bogus", "zone:atlantis")
        await client.send({"op": "dance"})
        assert client.ws is not None
        await client.ws.send("not json")
        await client.send({"op": "subscribe", "channels": "summary"})
        await client.wait_for(lambda c: len([m for m in c.messages if m["type"] == "error"]) >= 5, what="5 errors")
        errors = [m for m in client.messages if m["type"] == "error"]
        assert [e["data"]["code"] for e in errors] == [
            "unknown_channel",
            "unknown_channel",
            "bad_op",
            "bad_json",
            "bad_request",
        ]
        assert errors[0]["channel"] == "bogus"
        await client.subscribe("summary")
        await client.wait_for(lambda c: "summary" in c.states, what="summary snapshot after errors")
        await client.send({"op": "unsubscribe", "channels": ["summary"]})
        await client.send({"op": "ping"})
        await client.wait_for(lambda c: any(m["type"] == "heartbeat" for m in c.messages), what="heartbeat")
        heartbeat = next(m for m in client.messages if m["type"] == "heartbeat")
        assert heartbeat["channel"] == "" and heartbeat["data"] == {}


async def test_compression_only_when_configured(servers: list[str], token: str) -> None:
    """Both clients offer permessage-deflate: the default server declines it, the configured one takes it."""
    for base, expected in zip(servers, (None, "permessage-deflate"), strict=True):
        async with LiveClient(ws_url(base), token) as client:
            assert client.ws is not None and client.ws.response is not None
            extensions = client.ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (extensions.split(";")[0] if extensions else None) == expected, (base, extensions)
            await client.subscribe("summary")
            await client.wait_for(lambda c: "summary" in c.states, what="summary snapshot")


def writes(metrics: str, path: str) -> float:
    """The live route's writes by ``path`` (frames or asgi) in a /metrics page."""
    prefix = f'ioc_ws_writes_total{{path="{path}"}}'
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(prefix))


async def test_frames_are_written_whole_unless_compressed(servers: list[str], broker: Broker, token: str) -> None:
    """The plain server writes a reading's deltas to the client in the hub's publish (``direct``) and its
    snapshots in one call per wake (``frames``), never per message through ASGI; the compressing one (frames
    differ per client) uses the ASGI send for everything."""
    channels = ["summary", "alerts", f"zone:{ZONE}", f"device:{FLOOD}"]
    for base, fast in zip(servers, (True, False), strict=True):
        async with LiveClient(ws_url(base), token) as client:
            await client.subscribe(*channels)
            await client.wait_for(lambda c: set(channels) <= c.states.keys(), what="snapshots")
            level = 70.0 + fast
            publish_level(broker, FLOOD, level)
            await client.wait_for(lambda c, level=level: level_of(c, FLOOD) == level, what="the reading's delta")
        async with httpx.AsyncClient(base_url=base, headers=session_headers(token)) as http:
            metrics = (await http.get("/metrics")).text
        if fast:
            assert writes(metrics, "direct") > 0 and writes(metrics, "frames") > 0, base
            assert writes(metrics, "asgi") == 0, base
        else:
            assert writes(metrics, "direct") == writes(metrics, "frames") == 0, base
            assert writes(metrics, "asgi") >= 5, base


async def test_heartbeats_on_an_idle_connection(servers: list[str], token: str) -> None:
    async with LiveClient(ws_url(servers[1]), token) as client:
        beats = await client.wait_for(
            lambda c: (b := [m for m in c.messages if m["type"] == "heartbeat"]) and len(b) >= 2 and b,
            within=10,
            what="two heartbeats",
        )
        assert all(b["channel"] == "" for b in beats)


async def test_stuck_client_does_not_delay_others(servers: list[str], broker: Broker, token: str) -> None:
    """A client that subscribes to everything and never reads must not slow a reading client down."""
    base = servers[0]
    async with httpx.AsyncClient(base_url=base, headers=session_headers(token)) as http:
        zones = [z["zone_id"] for z in (await http.get("/api/v1/zones")).json()["items"]]
        devices = [d["device_id"] for d in (await http.get("/api/v1/devices", params={"limit": 1000})).json()["items"]]
    everything = ["summary", "alerts", "events", *(f"kind:{k}" for k in load_kinds())]
    everything += [f"zone:{z}" for z in zones] + [f"device:{d}" for d in devices]
    with StuckClient(ws_url(base), token) as stuck:
        async with LiveClient(ws_url(base), token) as good:
            for _ in range(100):  # each re-subscription asks for fresh snapshots: far more than the buffers hold
                stuck.send({"op": "subscribe", "channels": everything})
            await good.subscribe(f"device:{FLOOD2}")
            await good.wait_for(lambda c: f"device:{FLOOD2}" in c.states, what="the good client's snapshot")
            latencies = []
            for i in range(5):
                started = publish_level(broker, FLOOD2, 10.0 + i)
                await good.wait_for(lambda c, i=i: level_of(c, FLOOD2) == 10.0 + i, what=f"update {i}")
                latencies.append(time.monotonic() - started)
            async with httpx.AsyncClient(base_url=base, headers=session_headers(token)) as http:
                started = time.monotonic()
                assert (await http.get("/api/v1/health")).status_code == 200
                assert time.monotonic() - started < 1.0
                metrics = (await http.get("/metrics")).text
    dropped = next(float(line.split()[1]) for line in metrics.splitlines() if line.startswith("ioc_ws_dropped_total"))
    assert dropped > 0  # the stuck client's undelivered updates were merged, not queued
    assert max(latencies) < 2.0, latencies


async def test_two_servers_show_the_same_state(servers: list[str], broker: Broker, token: str) -> None:
    channels = [f"zone:{ZONE}", "summary"]
    async with LiveClient(ws_url(servers[0]), token) as a, LiveClient(ws_url(servers[1]), token) as b:
        for c in (a, b):
            await c.subscribe(*channels)
            await c.wait_for(lambda c: all(ch in c.states for ch in channels), what="snapshots")
        publish_level(broker, FLOOD2, 33.3)
        for c in (a, b):
            await c.wait_for(
                lambda c: any(
                    d["device_id"] == FLOOD2 and d["latest"]["water_level_cm"]["value"] == 33.3
                    for d in c.states[f"zone:{ZONE}"]["devices"]
                ),
                what="the reading on both servers",
            )
        by_id = lambda z: {d["device_id"]: d for d in z["devices"]}  # noqa: E731 - order is the client's

        def settled() -> bool:
            za, zb = a.states[f"zone:{ZONE}"], b.states[f"zone:{ZONE}"]
            summaries = a.states["summary"]["devices"] == b.states["summary"]["devices"]
            return by_id(za) == by_id(zb) and za["flood"] == zb["flood"] and summaries

        await until(settled, 10, what="both servers settled on the same snapshot")
        assert a.states[f"zone:{ZONE}"]["flood"]["max_level_cm"] >= 33.3


async def test_a_busy_channel_is_capped_at_one_delta_per_interval(
    run_ioc, broker: Broker, people: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    """Per-channel coalescing: at most one delta per interval on a changing channel, the newest value last."""
    port = free_port()
    server = run_ioc("serve-coalesce", "serve", "--port", str(port), env={"IOC_WS_COALESCE_MS": "1000"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/api/v1/health", 30, server)
        token = await login(base, people["viewer"], PASSWORD)
        busy = f"device:{FLOOD2}"
        async with LiveClient(ws_url(base), token) as client:
            await client.subscribe(busy)
            await client.wait_for(lambda c: busy in c.states, what="the snapshot")
            for i in range(12):  # a reading every ~0.25 s for 3 s
                await asyncio.to_thread(publish_level, broker, FLOOD2, 40.0 + i)
                await asyncio.sleep(0.2)
            await client.wait_for(lambda c: level_of(c, FLOOD2) == 51.0, what="the last reading")
            times = [
                at
                for m, at in zip(client.messages, client.received_at, strict=True)
                if m["channel"] == busy and m["type"] == "delta"
            ]
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            assert 2 <= len(times) <= 5, f"{len(times)} deltas for 12 readings in 3 s at one per second"
            assert all(g >= 0.9 for g in gaps), f"deltas closer than the 1 s interval: {gaps}"
    finally:
        server.stop()


async def test_partial_refresh_matches_a_full_load(pool: asyncpg.Pool) -> None:
    """The hub's hot path (status, times and latest values only) builds the same device objects as a full
    load (what the REST API serves), including a snapshot time, a new device and a disabled one."""
    ids = ["T-LIVE-PR1", "T-LIVE-PR2", "T-LIVE-PR3"]
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone, metadata) VALUES ($1, $2, $1, $3, $4) "
        "ON CONFLICT (device_id) DO NOTHING",
        [
            (ids[0], "flood", ZONE, {"warning_cm": 10, "danger_cm": 15}),
            (ids[1], "camera", ZONE, {}),
            (ids[2], "traffic", ZONE, {"free_flow_kmh": 60}),
        ],
    )
    async with pool.acquire() as conn:
        live = LiveState(set(load_kinds()))
        await live.load_all(conn)
        assert live.devices[ids[0]]["level"] is None
        await conn.execute(
            "INSERT INTO latest_values (device_id, metric, part, time, value) VALUES "
            "($1, 'water_level_cm', '', now(), 12.5), ($1, 'rainfall_mm_h', '', now(), 3), "
            "($2, 'avg_speed_kmh', '', now(), 25), ($2, 'vehicle_count', 'lane1', now(), 7) "
            "ON CONFLICT (device_id, metric, part) DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time",
            ids[0],
            ids[2],
        )
        await conn.execute("UPDATE devices SET status = 'online', last_seen = now() WHERE device_id = ANY($1)", ids)
        await conn.execute(
            "INSERT INTO snapshots (device_id, time, content_type, data) VALUES ($1, now(), 'image/jpeg', '\\xffd8') "
            "ON CONFLICT (device_id) DO UPDATE SET time = EXCLUDED.time",
            ids[1],
        )
        new = "T-LIVE-PR4"  # registered after this server loaded its state
        await conn.execute("INSERT INTO devices (device_id, kind, name, zone) VALUES ($1, 'flood', $1, $2)", new, ZONE)
        changed = await live.refresh_devices(conn, [*ids, new])
        full = {d["device_id"]: d for d in await queries.load_devices(conn, device_ids=[*ids, new])}
        assert {i: live.devices[i] for i in [*ids, new]} == full
        assert live.devices[ids[0]]["level"] == "warning" and live.devices[ids[2]]["congestion"] == 2
        assert live.devices[ids[1]]["snapshot_at"] is not None
        assert {f"zone:{ZONE}", "summary", f"device:{new}"} <= changed
        await conn.execute("UPDATE devices SET enabled = false WHERE device_id = $1", new)
        assert f"device:{new}" in await live.refresh_devices(conn, [new]) and new not in live.devices
        await conn.execute("DELETE FROM devices WHERE device_id = ANY($1)", [*ids, new])


async def test_commit_notices_name_every_device_within_the_payload_limit(pool: asyncpg.Pool) -> None:
    """A batch touching 2,000 devices with 64-character ids: every id is named once, over notices that
    PostgreSQL accepts (a payload of 8,000 bytes or more fails the transaction); counts come once."""
    devices = [f"{i:05d}".ljust(64, "x") for i in range(2000)]
    head = {"w": "w1", "t": "2026-11-21T00:00:00+00:00", "rows": 6000, "events": 0, "status": 2000, "kinds": ["flood"]}
    notices = commit_notices(head, devices)
    docs = [json.loads(n) for n in notices]
    assert len(notices) > 1 and all(len(n.encode()) < 8000 for n in notices)
    assert [d for doc in docs for d in doc["devices"]] == devices
    assert docs[0]["rows"] == 6000 and all("rows" not in doc for doc in docs[1:])
    assert all(doc["w"] == "w1" for doc in docs)
    async with pool.acquire() as conn, conn.transaction():
        for notice in notices:
            await conn.execute("SELECT pg_notify('ioc_test_notices', $1)", notice)
    assert json.loads(commit_notices(head, [])[0])["devices"] == []

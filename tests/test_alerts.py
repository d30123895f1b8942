"""The alert engine end to end: MQTT readings open, escalate and resolve alerts; one leader; failover."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ioc.processes import Child, free_port
from ioc.up import wait_http
from tests.support.auth import PASSWORD
from tests.support.live import LiveClient, login, session_headers
from tests.support.stack import Broker, mosquitto_pub, until, wait_for

pytestmark = pytest.mark.usefixtures("ingest", "alert_devices")

RULES = """
version: 1
evaluate_every_s: 0.5
rules:
  - id: t_flood
    type: threshold
    kind: flood
    metric: water_level_cm
    warning: 20
    critical: 30
    warning_from: warning_cm
    critical_from: danger_cm
    hysteresis: 3
    for_s: 1
    clear_delay_s: 2
"""
STORM, ACKED, FAILOVER, STALE = "T-ALR-FL1", "T-ALR-FL2", "T-ALR-FL3", "T-ALR-ST1"


class Servers:
    """``ioc serve`` processes sharing one rules file; started, killed and restarted by the tests."""

    def __init__(self, run_ioc: Any, rules: Path) -> None:
        self.run_ioc = run_ioc
        self.env = {"IOC_ALERT_RULES_FILE": str(rules), "IOC_WS_COALESCE_MS": "100"}
        self.children: dict[str, Child] = {}

    def start(self) -> str:
        """Start one more server; returns its base URL once healthy."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        child = self.run_ioc(f"serve-alerts-{port}", "serve", "--port", str(port), env=self.env)
        wait_http(f"{base}/api/v1/health", 30, child)
        self.children[base] = child
        return base

    def stop(self, base: str, sig: int = signal.SIGTERM) -> None:
        """Stop one server (SIGKILL to simulate a crash)."""
        child = self.children.pop(base)
        if sig == signal.SIGKILL:
            child.proc.kill()
            child.proc.wait(5)
        child.stop()

    def stop_all(self) -> None:
        """Stop every server."""
        for base in list(self.children):
            self.stop(base)


@pytest.fixture(scope="module")
def servers(run_ioc, tmp_path_factory) -> Iterator[Servers]:  # type: ignore[no-untyped-def]
    """Two servers with fast test rules; more are started by the tests."""
    rules = Path(tmp_path_factory.mktemp("alerts")) / "rules.yaml"
    rules.write_text(RULES)
    s = Servers(run_ioc, rules)
    s.start()
    s.start()
    # One leader per database: a server of another module still running would evaluate its own rules instead.
    wait_for(lambda: leaders(list(s.children)), 15, 0.2, "one of this module's servers to lead the alert engine")
    yield s
    s.stop_all()


@pytest.fixture(scope="module")
async def alert_devices(pool: asyncpg.Pool) -> list[str]:
    """Our flood devices (warning 20 cm, danger 30 cm) in zone q3, and one about to go stale."""
    meta = {"warning_cm": 20, "danger_cm": 30}
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, zone, metadata) VALUES ($1, 'flood', $1, 'q3', $2) "
        "ON CONFLICT (device_id) DO NOTHING",
        [(STORM, meta), (ACKED, meta), (FAILOVER, meta)],
    )
    # No wait for the reload: the ingest looks a device it has not loaded up in the database (lookup_device).
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")
    return [STORM, ACKED, FAILOVER]


@pytest.fixture(scope="module")
async def token(servers: Servers, people: dict[str, str]) -> str:
    """An operator's session; sessions live in the database, so it outlives server restarts."""
    return await login(next(iter(servers.children)), people["operator"], PASSWORD)


def ws_url(base: str) -> str:
    """The live websocket of a server."""
    return base.replace("http://", "ws://") + "/ws/v1/live"


def publish_level(broker: Broker, device_id: str, level: float) -> None:
    """Publish one water level reading now."""
    payload = {"ts": datetime.now(UTC).isoformat(), "metrics": {"water_level_cm": level}}
    mosquitto_pub(broker, f"ioc/v1/flood/{device_id}/telemetry", json.dumps(payload).encode())


def alert_of(client: LiveClient, device_id: str) -> dict[str, Any] | None:
    """The client's current alert (alerts channel) for a device, including one just shown as resolved."""
    return next((a for a in client.states["alerts"]["alerts"] if a["device_id"] == device_id), None)


def leaders(bases: list[str]) -> list[str]:
    """The servers whose alert engine currently leads."""
    out = []
    for base in bases:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        if "ioc_alert_engine_leader 1.0" in text:
            out.append(base)
    return out


async def test_storm_escalates_then_resolves(servers: Servers, broker: Broker, token: str) -> None:
    base = next(iter(servers.children))
    async with LiveClient(ws_url(base), token) as client:
        await client.subscribe("alerts")
        await client.wait_for(lambda c: "alerts" in c.states, what="alerts snapshot")
        publish_level(broker, STORM, 24.0)
        warning = await client.wait_for(lambda c: alert_of(c, STORM), within=15, what="a warning alert")
        assert (
            warning["severity"] == "warning" and warning["state"] == "open" and warning["rule"] == "t_flood"
        )
        assert warning["zone"] == "q3" and warning["value"] == 24.0
        publish_level(broker, STORM, 31.0)
        publish_level(broker, STORM, 35.0)
        critical = await client.wait_for(
            lambda c: (a := alert_of(c, STORM)) and a["severity"] == "critical" and a,
            within=15,
            what="escalation",
        )
        assert critical["id"] == warning["id"]  # the same alert escalates
        publish_level(broker, STORM, 18.0)  # inside the hysteresis band (20 - 3): not yet clear
        publish_level(broker, STORM, 10.0)
        resolved = await client.wait_for(
            lambda c: (a := alert_of(c, STORM)) and a["state"] == "resolved" and a,
            within=15,
            what="auto-resolve",
        )
        assert resolved["id"] == warning["id"] and resolved["resolved_at"]
    async with httpx.AsyncClient(base_url=base, headers=session_headers(token)) as http:
        detail = (await http.get(f"/api/v1/alerts/{warning['id']}")).json()
    steps = [(h["to_state"], h["severity"], h["actor"]) for h in detail["history"]]
    assert steps == [
        ("open", "warning", "engine"),
        ("open", "critical", "engine"),
        ("resolved", "critical", "engine"),
    ]


def evaluations(bases: list[str]) -> float:
    """Alert evaluation rounds so far, over every server (only the leader's count moves)."""
    total = 0.0
    for base in bases:
        for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
            if line.startswith("ioc_alert_evaluations_total "):
                total += float(line.split()[1])
    return total


async def test_acknowledged_alert_survives_restart(
    servers: Servers, broker: Broker, token: str, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    publish_level(broker, ACKED, 40.0)
    base = next(iter(servers.children))
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=session_headers(token)) as http:
        alert = None
        deadline = time.monotonic() + 15
        while alert is None and time.monotonic() < deadline:
            items = (await http.get("/api/v1/alerts", params={"state": "active", "zone": "q3"})).json()[
                "items"
            ]
            alert = next((a for a in items if a["device_id"] == ACKED), None)
            await asyncio.sleep(0.2)
        assert alert is not None and alert["severity"] == "critical"
        acked = (
            await http.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "team sent"})
        ).json()
        assert acked["state"] == "acknowledged" and acked["acknowledged_at"] and acked["note"] == "team sent"
    for b in list(servers.children):
        servers.stop(b)
    base = servers.start()
    servers.start()
    async with LiveClient(ws_url(base), token) as client:
        await client.subscribe("alerts")
        await client.wait_for(lambda c: alert_of(c, ACKED), what="the alert after restart")
        publish_level(broker, ACKED, 41.0)  # the condition still holds: the engine must not reopen or change it
        # The thing under test is that nothing happens: once the reading is stored, let the leader evaluate the
        # rules three more times, then look.
        stored = "SELECT count(*) FROM measurements WHERE device_id = $1 AND metric = 'water_level_cm' AND value = 41"
        await until(lambda: pool.fetchval(stored, ACKED), 15, 0.1, "the new reading stored")
        rounds = evaluations(list(servers.children))
        await until(lambda: evaluations(list(servers.children)) >= rounds + 3, 15, 0.1, "three evaluations")
        again = alert_of(client, ACKED)
        assert again is not None and again["id"] == alert["id"] and again["state"] == "acknowledged"
        assert again["acknowledged_by"] == acked["acknowledged_by"] == people["operator"]


async def test_one_engine_and_failover_on_kill(servers: Servers, broker: Broker, token: str) -> None:
    bases = list(servers.children)
    assert len(bases) >= 2
    wait_for(lambda: len(leaders(bases)) == 1, 10, 0.2, "exactly one leader")  # no websocket open: may block
    leading = leaders(bases)
    assert len(leading) == 1, leading
    servers.stop(leading[0], signal.SIGKILL)
    survivors = [b for b in bases if b != leading[0]]
    killed_at = time.monotonic()
    wait_for(lambda: leaders(survivors), 15, 0.1, "a new leader")
    failover_s = time.monotonic() - killed_at
    assert len(leaders(survivors)) == 1 and failover_s < 8, failover_s
    async with LiveClient(ws_url(survivors[0]), token) as client:  # the new leader evaluates
        await client.subscribe("alerts")
        await client.wait_for(lambda c: "alerts" in c.states, what="alerts snapshot")
        publish_level(broker, FAILOVER, 26.0)
        alert = await client.wait_for(
            lambda c: alert_of(c, FAILOVER), within=15, what="an alert after failover"
        )
        assert alert["severity"] == "warning"


async def test_silent_device_becomes_stale(servers: Servers, pool: asyncpg.Pool, token: str) -> None:
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, zone, interval_s, status, last_seen) "
        "VALUES ($1, 'flood', $1, 'q3', 1, 'online', now() - interval '1 minute') "
        "ON CONFLICT (device_id) DO UPDATE SET status = 'online', last_seen = EXCLUDED.last_seen",
        STALE,
    )
    await pool.execute("SELECT pg_notify('ioc_registry', 'test')")
    base = next(iter(servers.children))
    async with LiveClient(ws_url(base), token) as client:
        await client.subscribe("kind:flood")
        await client.wait_for(
            lambda c: any(
                d["device_id"] == STALE and d["status"] == "stale" for d in c.states["kind:flood"]["devices"]
            ),
            within=10,
            what="the device marked stale",
        )

"""Issue 11's hostile devices against the real stack: the session broker (ioc's build with ioc_guard), the
real ingest worker and the database. A device cannot join the ingest's shared subscription nor take the
worker's client id; the city's readings are all stored."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import asyncpg
import pytest

from ioc import provisioning
from ioc.processes import Child
from ioc.up import Stack
from tests.support.mqtt import connect
from tests.support.stack import log_tail, register_devices, wait_rows

SUFFIX = uuid.uuid4().hex[:6]
ATTACKERS = [f"evil{i}{SUFFIX}" for i in range(3)]
VICTIMS = [f"city{i}{SUFFIX}" for i in range(10)]
READINGS_EACH = 100


@pytest.fixture(scope="module")
async def attackers(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[dict[str, str]]:
    """Three provisioned devices (their secrets by id) on the session broker, and ten victim devices."""
    assert stack.mosquitto is not None and stack.broker_files is not None
    await register_devices(pool, *((d, "flood", "canonical") for d in [*ATTACKERS, *VICTIMS]))
    async with pool.acquire() as conn:
        secrets = {d: await provisioning.provision_device(conn, d, actor="test") for d in ATTACKERS}
        await provisioning.write_broker_files(conn, stack.broker_files.password_file.parent)
    stack.mosquitto.reload()
    deadline = time.monotonic() + 10
    while True:  # the broker re-reads its files on SIGHUP, asynchronously
        client, reason = connect(stack.mosquitto.port, ATTACKERS[0], secrets[ATTACKERS[0]], client_id=ATTACKERS[0])
        client.stop()
        if not reason.is_failure or time.monotonic() > deadline:  # type: ignore[attr-defined]
            break
        time.sleep(0.1)
    yield secrets
    async with pool.acquire() as conn:
        for d in ATTACKERS:
            await provisioning.revoke_device(conn, d, actor="test")
        await provisioning.write_broker_files(conn, stack.broker_files.password_file.parent)
    stack.mosquitto.reload()


async def test_devices_in_the_ingest_share_group_cost_no_reading(
    stack: Stack, pool: asyncpg.Pool, ingest: Child, attackers: dict[str, str]
) -> None:
    """Issue 11 observation 1 run as written: 3 device connections SUBSCRIBE the ingest's $share group."""
    assert stack.mosquitto is not None and stack.broker_files is not None
    port = stack.mosquitto.port
    evil = []
    for device_id, secret in attackers.items():
        client, reason = connect(port, device_id, secret, client_id=device_id)
        assert not reason.is_failure, reason  # type: ignore[attr-defined]
        client.client.subscribe([("$share/ioc-ingest/ioc/v1/+/+/+", 1), ("$share/ioc-ingest/legacy/flood/+", 1)])
        evil.append(client)
    try:
        refused = [[r.value for r in c.subacks.get(timeout=5)] for c in evil]  # type: ignore[attr-defined]
        assert refused == [[0x87, 0x87]] * len(evil)

        user, password = (unquote(p) for p in stack.broker_files.credentials["simulate"].split(":", 1))
        city, reason = connect(port, user, password, client_id=f"sim-abuse-{SUFFIX}")
        assert not reason.is_failure, reason  # type: ignore[attr-defined]
        base = time.time() - 120
        try:
            infos = [
                city.client.publish(
                    f"ioc/v1/flood/{device_id}/telemetry",
                    json.dumps({"ts": base + seq / 1000, "seq": seq, "metrics": {"water_level_cm": seq}}),
                    qos=1,
                )
                for seq in range(1, READINGS_EACH + 1)
                for device_id in VICTIMS
            ]
            for info in infos:
                info.wait_for_publish(10)
        finally:
            city.stop()
        total = READINGS_EACH * len(VICTIMS)
        rows = await wait_rows(
            pool,
            "SELECT device_id, seq FROM measurements WHERE device_id = ANY($1::text[]) AND metric = 'water_level_cm'",
            VICTIMS,
            count=total,
            timeout=30,
        )
        assert len(rows) == total, f"{len(rows)} of {total} readings stored"
        assert len({(r["device_id"], r["seq"]) for r in rows}) == total
    finally:
        for client in evil:
            client.stop()
    assert ingest.proc.poll() is None, log_tail(ingest)


async def test_device_using_the_worker_client_id_is_refused_and_the_worker_stays(
    stack: Stack, pool: asyncpg.Pool, ingest: Child, attackers: dict[str, str]
) -> None:
    """Issue 11 observation 3: a device connects with the ingest worker's client id, repeatedly."""
    assert stack.mosquitto is not None
    worker_id = "ingest-session"  # tests/conftest.py's worker; by default it is ioc-ingest-<host>
    device_id = ATTACKERS[1]
    assert ingest.log is not None
    worker_log = Path(ingest.log.name)
    before = worker_log.read_text(errors="replace")
    for _ in range(5):
        client, reason = connect(stack.mosquitto.port, device_id, attackers[device_id], client_id=worker_id)
        client.stop()
        assert reason.value == 0x87, reason  # type: ignore[attr-defined]
    after = worker_log.read_text(errors="replace")[len(before) :]
    assert "disconnected from the broker" not in after, after
    broker_log = (stack.state_dir / "logs" / "mosquitto.log").read_text(errors="replace")
    assert f"Client {worker_id} already connected" not in broker_log
    assert f"must be its device id, not '{worker_id}'" in broker_log  # ioc_guard's notice: refused, and why
    # Still the one consuming: a reading published now is stored.
    victim = VICTIMS[0]
    await register_devices(pool, (victim, "flood", "canonical"))
    user, password = (unquote(p) for p in stack.broker_files.credentials["simulate"].split(":", 1))  # type: ignore[union-attr]
    city, _ = connect(stack.mosquitto.port, user, password, client_id=f"sim-takeover-{SUFFIX}")
    try:
        city.client.publish(
            f"ioc/v1/flood/{victim}/telemetry",
            json.dumps({"ts": time.time() - 1, "seq": 10_000, "metrics": {"water_level_cm": 1}}),
            qos=1,
        ).wait_for_publish(10)
    finally:
        city.stop()
    await wait_rows(pool, "SELECT 1 FROM measurements WHERE device_id = $1 AND seq = 10000", victim, timeout=20)

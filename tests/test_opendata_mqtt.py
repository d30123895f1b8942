"""The MQTT read side: readings published by devices on the devices' broker go through the real ingest and reach an
anonymous paho subscriber of the public broker as SensorThings Observations; what the policy withholds never does;
anonymous clients cannot publish there, and the devices' broker still refuses them."""

from __future__ import annotations

import json
import queue
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ioc.broker import EmbeddedMosquitto
from ioc.db import REGISTRY_CHANNEL
from ioc.processes import free_port, port_free
from ioc.up import Stack, wait_http
from opendata.mqtt import PUBLIC_TEMPLATE, publishable_hour, topic, write_broker_files
from tests.opendata_fixtures import (
    CAMERA,
    SECRET,
    SECRET_VALUE,
    THING,
    TRAFFIC,
    WITHHELD_VALUE,
    open_data_fixture,  # noqa: F401 (fixture)
    policy_file,
)
from tests.support.mqtt import Client, connect
from tests.support.stack import Broker, mosquitto_pub, wait_for
from tests.test_up import health, ioc_up, wait_up

NOT_AUTHORIZED = 0x87
CAMERA_HOUR_VALUE = 17.375  # every minute of the camera's newest complete hour (unless the fixture's own hours)


@dataclass
class Public:
    """The public broker, an anonymous subscriber of ``v1.1/#`` that connected before anything was pushed, and
    ``ioc open``'s base URL."""

    port: int
    subscriber: Client
    base: str

    @property
    def port_http(self) -> str:
        """``ioc open``'s port."""
        return self.base.rsplit(":", 1)[1]

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Every message received since the last call."""
        got: list[tuple[str, dict[str, Any]]] = []
        while True:
            try:
                name, payload = self.subscriber.messages.get_nowait()
            except queue.Empty:
                return got
            got.append((name, json.loads(payload)))


@pytest.fixture(scope="module")
async def camera_hour(pool: asyncpg.Pool, open_data: None) -> AsyncIterator[datetime]:
    """One-minute rollups of the camera (and of the withheld device) for the hour ``ioc open`` pushes at start;
    afterwards this module's rows (those rollups and the readings its tests publish) are removed, so the other
    open data modules, which share the test devices, see only their own fixture's data."""
    hour = publishable_hour(datetime.now(UTC))
    rows = [(hour + timedelta(minutes=m), device) for m in range(60) for device in (CAMERA, SECRET)]
    await pool.executemany(
        "INSERT INTO rollups_1m (bucket, device_id, metric, part, count, sum, min, max) "
        "VALUES ($1, $2, 'people_count', '', 1, $3, $3, $3) ON CONFLICT DO NOTHING",
        [(t, d, CAMERA_HOUR_VALUE) for t, d in rows],
    )
    await pool.execute("SELECT pg_notify($1, 'import')", REGISTRY_CHANNEL)  # the ingest learns the test devices
    yield hour
    devices = [CAMERA, SECRET, THING, TRAFFIC]
    await pool.execute("DELETE FROM rollups_1m WHERE device_id = ANY($1::text[]) AND bucket >= $2", devices, hour)
    await pool.execute("DELETE FROM measurements WHERE device_id = ANY($1::text[]) AND time >= $2", devices, hour)


@pytest.fixture(scope="module")
def public(run_ioc, module_scratch_dir, camera_hour, ingest) -> Iterator[Public]:  # type: ignore[no-untyped-def]
    """The public broker with its generated files, a subscriber, then ``ioc open`` pushing to it."""
    folder: Path = module_scratch_dir("ioc-od-mqtt-")
    lines, publisher = write_broker_files(folder / "public-auth")
    broker = EmbeddedMosquitto(folder / "public", free_port(), template=PUBLIC_TEMPLATE, extra=lines)
    broker.start()
    subscriber, reason = connect(broker.port, None, None)
    assert not reason.is_failure  # type: ignore[attr-defined]
    subscriber.client.subscribe("v1.1/#", qos=0)
    subscriber.subacks.get(timeout=5)
    port = free_port()
    env = {
        "IOC_OPEN_DATA_FILE": str(policy_file(folder)),
        "IOC_OPEN_BULK_DIR": str(folder / "bulk"),
        "IOC_OPEN_MQTT_URL": f"mqtt://{publisher}@127.0.0.1:{broker.port}",
    }
    child = run_ioc("open-mqtt", "open", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/open/health", 30, child)
    wait_for(lambda: httpx.get(f"{base}/open/health").json()["mqtt"]["connected"], 15, what="the publisher")
    yield Public(broker.port, subscriber, base)
    child.stop()
    subscriber.stop()
    broker.stop()


def now_ms() -> datetime:
    """Now, to the millisecond (a reading's precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def reading(broker: Broker, kind: str, device: str, metrics: dict[str, float], at: datetime) -> None:
    """A device's canonical telemetry, published on the devices' broker."""
    ts = at.isoformat().replace("+00:00", "Z")
    mosquitto_pub(broker, f"ioc/v1/{kind}/{device}/telemetry", json.dumps({"ts": ts, "metrics": metrics}).encode())


def test_public_readings_are_pushed_and_withheld_ones_never(public: Public, broker: Broker) -> None:
    at = now_ms()
    reading(broker, "flood", SECRET, {"water_level_cm": SECRET_VALUE}, at)
    reading(broker, "flood", THING, {"water_level_cm": 42.5, "battery_pct": WITHHELD_VALUE}, at)
    reading(broker, "camera", CAMERA, {"people_count": 3.0}, at)  # raw camera counts are never published
    reading(broker, "traffic", TRAFFIC, {"vehicle_count": 61.0}, at)
    got: list[tuple[str, dict[str, Any]]] = []
    wanted = {topic(f"{THING}:water_level_cm"), topic(f"{TRAFFIC}:vehicle_count"), topic(f"{CAMERA}:people_count")}

    def arrived() -> bool:
        got.extend(public.drain())
        return wanted <= {name for name, _ in got}

    wait_for(arrived, 30, what="the pushed observations")

    # Each message is the API's own entity (links aside: the message's point at IOC_OPEN_API_URL's default).
    level = next(body for name, body in got if name == topic(f"{THING}:water_level_cm"))
    stamp = round(at.timestamp() * 1000)
    assert level["@iot.id"] == f"{THING}:water_level_cm:{stamp}" and level["result"] == 42.5
    assert level["@iot.selfLink"] == f"http://localhost:{public.port_http}/sta/v1.1/Observations('{level['@iot.id']}')"
    assert unlinked(level) == unlinked(httpx.get(f"{public.base}/sta/v1.1/Observations('{level['@iot.id']}')").json())
    camera = [body for name, body in got if name == topic(f"{CAMERA}:people_count")]
    newest_hour = httpx.get(
        f"{public.base}/sta/v1.1/Datastreams('{CAMERA}:people_count')/Observations",
        params={"$orderby": "phenomenonTime desc", "$top": "1"},
    ).json()["value"]
    assert [unlinked(c) for c in camera] == [unlinked(o) for o in newest_hour]  # the hour pushed at start, no raw count
    hour = publishable_hour(datetime.now(UTC))
    assert camera[0]["phenomenonTime"] == f"{hour:%Y-%m-%dT%H:00:00Z}/{hour + timedelta(hours=1):%Y-%m-%dT%H:00:00Z}"
    assert SECRET not in json.dumps(got)  # the withheld device's id nowhere, not even in a link
    # Nothing withheld in any message: no withheld metric's Datastream, no withheld value (the raw camera count is
    # covered above: the camera's only message is the hour's mean). Per message, not as substrings of the whole
    # text, where another public reading's digits (e.g. a rainfall of 13.0) would match.
    withheld = (SECRET_VALUE, WITHHELD_VALUE)
    leaks = [(n, body.get("result")) for n, body in got if ":battery_pct" in n or body.get("result") in withheld]
    assert not leaks, leaks
    health = httpx.get(f"{public.base}/open/health").json()
    assert health["mqtt"]["published"] >= 3 and health["nice"] >= 10


def test_anonymous_clients_cannot_publish_on_the_public_broker(public: Public) -> None:
    """Neither a fake observation nor a device topic: the broker answers PUBACK 0x87 and delivers nothing."""
    client, _ = connect(public.port, None, None)
    try:
        assert client.publish(topic(f"{THING}:water_level_cm"), b'{"result": 1e9}') == NOT_AUTHORIZED
        assert client.publish(f"ioc/v1/flood/{THING}/telemetry", b'{"metrics": {}}') == NOT_AUTHORIZED
    finally:
        client.stop()
    assert all(
        "1e9" not in json.dumps(body) and b"1000000000" not in json.dumps(body).encode() for _, body in public.drain()
    )


def test_the_devices_broker_still_refuses_anonymous_clients(public: Public, stack: Stack, broker: Broker) -> None:
    """The public side is a broker of its own: the devices' broker keeps its ACL, and device topics never reach
    the public one (its subscriber of ``#`` hears only v1.1 topics while a device publishes)."""
    assert stack.mosquitto is not None and stack.mosquitto.port != public.port
    _, reason = connect(stack.mosquitto.port, None, None)
    assert reason.is_failure  # type: ignore[attr-defined]
    everything, _ = connect(public.port, None, None)
    try:
        everything.client.subscribe("#", qos=0)
        everything.subacks.get(timeout=5)
        reading(broker, "flood", THING, {"water_level_cm": 43.5}, now_ms())
        first = everything.messages.get(timeout=30)  # the reading, pushed as an Observation
        assert first[0] == topic(f"{THING}:water_level_cm")
        assert all(name.startswith("v1.1/") for name, _ in [first, *_pending(everything)])
    finally:
        everything.stop()


def unlinked(entity: dict[str, Any]) -> dict[str, Any]:
    """An entity without its links (they name the server's address)."""
    return {k: v for k, v in entity.items() if "Link" not in k}


def _pending(client: Client) -> list[tuple[str, bytes]]:
    got = []
    while not client.messages.empty():
        got.append(client.messages.get_nowait())
    return got


def test_ioc_up_runs_ioc_open_and_the_public_broker(module_scratch_dir: Callable[[str], Path]) -> None:
    """``ioc up`` starts ``ioc open`` under its supervisor (health lists it) and the public broker it pushes to."""
    open_port, public_port = free_port(), free_port()
    env = {"IOC_OPEN_HTTP_PORT": str(open_port), "IOC_OPEN_MQTT_PORT": str(public_port)}
    proc, ports = ioc_up(module_scratch_dir("ioc-od-up-"), "--no-simulators", env=env)
    try:
        banner = "\n".join(wait_up(proc))
        assert f"http://localhost:{open_port}/sta/v1.1" in banner and f"127.0.0.1:{public_port}" in banner
        assert health(ports["http"])["processes"]["open"]["state"] == "running"
        opened = httpx.get(f"http://127.0.0.1:{open_port}/open/health").json()
        assert opened["nice"] >= 10 and opened["mqtt"] == {"connected": True, "published": 0}
        client, reason = connect(public_port, None, None)
        client.stop()
        assert not reason.is_failure  # type: ignore[attr-defined]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0
    assert port_free(open_port) and port_free(public_port)

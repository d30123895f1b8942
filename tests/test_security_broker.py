"""ioc.provisioning and ioc.tls against a real Mosquitto 2 running our generated password and ACL files."""

from __future__ import annotations

import argparse
import queue
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import paho.mqtt.client as mqtt
import pytest

from ingest.decoders import FORMATS
from ioc import audit, provisioning, security_cli
from ioc.broker import EmbeddedMosquitto
from ioc.processes import free_port
from ioc.provisioning import BrokerFiles, ProvisioningError
from ioc.settings import Settings
from ioc.tls import TlsListener, client_context
from ioc.up import Stack
from tests.support.mqtt import Client, connect, userinfo
from tests.support.stack import register_devices

SUFFIX = uuid.uuid4().hex[:6]
DEV_A, DEV_B, DEV_L = f"secA{SUFFIX}", f"secB{SUFFIX}", f"secL{SUFFIX}"


@dataclass
class LockedBroker:
    """A Mosquitto with anonymous access off, using the files written from the database."""

    mosquitto: EmbeddedMosquitto
    files: BrokerFiles
    secrets: dict[str, str]

    @property
    def port(self) -> int:
        """Its plain listener."""
        return self.mosquitto.port


@pytest.fixture(scope="module")
async def locked(pool: asyncpg.Pool, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockedBroker]:
    """Three provisioned devices (two canonical, one legacy_flood), the service accounts and a broker."""
    root = tmp_path_factory.mktemp("broker")
    # The session stack's service secrets: without them prepare_broker would rotate the shared accounts
    # and the session's ingest would be refused at the session broker's next reload.
    assert stack.broker_files is not None
    shutil.copytree(stack.broker_files.password_file.parent / provisioning.SECRETS_DIR, root / provisioning.SECRETS_DIR)
    await register_devices(
        pool, (DEV_A, "flood", "canonical"), (DEV_B, "flood", "canonical"), (DEV_L, "flood", "legacy_flood")
    )
    async with pool.acquire() as conn:
        device_secrets = {
            d: await provisioning.provision_device(conn, d, actor="test") for d in (DEV_A, DEV_B, DEV_L)
        }
        files = await provisioning.prepare_broker(conn, root)
    mosquitto = EmbeddedMosquitto(root, free_port(), extra=files.config_lines())
    mosquitto.start()
    try:
        yield LockedBroker(mosquitto, files, device_secrets)
    finally:
        mosquitto.stop()


def ingest_subscriber(locked: LockedBroker, topic_filter: str) -> Client:
    """A subscriber using the ingest service account (shared subscription, as the ingest does)."""
    user, password = userinfo(locked.files.credentials["ingest"])
    sub, reason = connect(locked.port, user, password)
    assert not reason.is_failure, reason  # type: ignore[attr-defined]
    sub.client.subscribe(f"$share/ioc-ingest/{topic_filter}", qos=1)
    acks = sub.subacks.get(timeout=5)
    assert not acks[0].is_failure, acks  # type: ignore[attr-defined]
    return sub


@pytest.mark.parametrize("fmt", sorted(f.FORMAT for f in FORMATS))
def test_every_topic_a_device_may_publish_reaches_the_ingest(fmt: str) -> None:
    """Issue 12 item 4: the device ACL is inside the ingest's subscriptions (nothing allowed and unread)."""
    ingest_filters = [f.TOPIC.filter for f in FORMATS]
    for pattern in provisioning.device_topics("DEV-1", "flood", fmt):
        assert "#" not in pattern, pattern
        concrete = pattern.replace("+", "anything")
        assert any(mqtt.topic_matches_sub(f, concrete) for f in ingest_filters), (pattern, ingest_filters)


def test_our_hash_is_mosquitto_passwd_format(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "u", "s3cret-value"], check=True)
    encoded = pw.read_text().strip().split(":", 1)[1]
    assert encoded.startswith("$7$101$")
    assert provisioning.verify_mosquitto_hash("s3cret-value", encoded)
    assert not provisioning.verify_mosquitto_hash("s3cret-valuf", encoded)
    ours = provisioning.mosquitto_hash("s3cret-value")
    assert ours.split("$")[1:3] == ["7", "101"] and provisioning.verify_mosquitto_hash("s3cret-value", ours)


def test_anonymous_and_wrong_password_are_refused(locked: LockedBroker) -> None:
    anon, reason = connect(locked.port, None, None)
    anon.stop()
    assert reason.is_failure, reason  # type: ignore[attr-defined]
    wrong, reason = connect(locked.port, DEV_A, locked.secrets[DEV_B])
    wrong.stop()
    assert reason.is_failure, reason  # type: ignore[attr-defined]


def test_device_cannot_publish_as_another(locked: LockedBroker) -> None:
    sub = ingest_subscriber(locked, "ioc/v1/+/+/+")
    dev, reason = connect(locked.port, DEV_A, locked.secrets[DEV_A])
    assert not reason.is_failure, reason  # type: ignore[attr-defined]
    try:
        dev.client.publish(f"ioc/v1/flood/{DEV_B}/telemetry", b"forged", qos=1).wait_for_publish(5)
        dev.client.publish(f"ioc/v1/traffic/{DEV_A}/telemetry", b"wrong kind", qos=1).wait_for_publish(5)
        dev.client.publish(f"ioc/v1/flood/{DEV_A}/telemetry", b"mine", qos=1).wait_for_publish(5)
        # Same publisher, same subscriber: had the forgeries passed, they would arrive before "mine".
        assert sub.messages.get(timeout=5) == (f"ioc/v1/flood/{DEV_A}/telemetry", b"mine")
        assert sub.messages.empty()
    finally:
        dev.stop()
        sub.stop()


def test_vendor_device_publishes_only_its_vendor_topic(locked: LockedBroker) -> None:
    sub = ingest_subscriber(locked, "legacy/flood/+")
    dev, _ = connect(locked.port, DEV_L, locked.secrets[DEV_L])
    try:
        dev.client.publish(f"legacy/flood/{DEV_A}", b"forged", qos=1).wait_for_publish(5)
        dev.client.publish(f"legacy/flood/{DEV_L}", b"mine", qos=1).wait_for_publish(5)
        assert sub.messages.get(timeout=5) == (f"legacy/flood/{DEV_L}", b"mine")
        assert sub.messages.empty()
    finally:
        dev.stop()
        sub.stop()


def test_device_subscribe_is_refused(locked: LockedBroker) -> None:
    """ioc_guard refuses every SUBSCRIBE of a device (the ACL file alone grants them all)."""
    dev, _ = connect(locked.port, DEV_A, locked.secrets[DEV_A])
    sim_user, sim_password = userinfo(locked.files.credentials["simulate"])
    sim, reason = connect(locked.port, sim_user, sim_password)
    assert not reason.is_failure, reason  # type: ignore[attr-defined]
    try:
        shared = ("$share/ioc-ingest/ioc/v1/+/+/+", "$share/ioc-ingest/legacy/flood/+")
        for topic_filter in (*shared, "#", f"ioc/v1/flood/{DEV_A}/#"):
            dev.client.subscribe(topic_filter, qos=1)
            assert [r.value for r in dev.subacks.get(timeout=5)] == [0x87], topic_filter  # type: ignore[attr-defined]
        sim.client.publish(f"ioc/v1/flood/{DEV_A}/telemetry", b"x", qos=1).wait_for_publish(5)
        with pytest.raises(queue.Empty):
            dev.messages.get(timeout=0.5)
    finally:
        dev.stop()
        sim.stop()


def test_guard_conf_written_for_compose_loads_the_plugin(locked: LockedBroker, tmp_path: Path) -> None:
    """compose's broker reads conf.d/ioc-guard.conf through include_dir: the same rules as ``ioc up``."""
    conf_d = locked.mosquitto.root / provisioning.GUARD_CONF.parent
    assert (conf_d / provisioning.GUARD_CONF.name).stat().st_mode & 0o777 == 0o600
    assert locked.mosquitto.conf_path.stat().st_mode & 0o777 == 0o600
    files = [f"password_file {locked.files.password_file}", f"acl_file {locked.files.acl_file}"]
    broker = EmbeddedMosquitto(tmp_path, free_port(), extra=["allow_anonymous false", *files, f"include_dir {conf_d}"])
    broker.start()
    try:
        dev, _ = connect(broker.port, DEV_A, locked.secrets[DEV_A])
        dev.client.subscribe("$share/ioc-ingest/ioc/v1/+/+/+", qos=1)
        assert [r.value for r in dev.subacks.get(timeout=5)] == [0x87]  # type: ignore[attr-defined]
        dev.stop()
    finally:
        broker.stop()


def test_device_must_use_its_own_id_as_client_id(locked: LockedBroker) -> None:
    for client_id in (DEV_B, f"{DEV_A}-2", "ioc-ingest-host", "ingest-session"):
        other, reason = connect(locked.port, DEV_A, locked.secrets[DEV_A], client_id=client_id)
        other.stop()
        assert reason.value == 0x87, (client_id, reason)  # type: ignore[attr-defined]
    mine, reason = connect(locked.port, DEV_A, locked.secrets[DEV_A], client_id=DEV_A)
    mine.stop()
    assert not reason.is_failure, reason  # type: ignore[attr-defined]


def test_reserved_worker_client_id_is_refused_to_other_accounts(locked: LockedBroker) -> None:
    """A client id starting with ``ioc-ingest-`` belongs to the ingest account: no one else can take it over."""
    worker_id = f"ioc-ingest-{SUFFIX}"
    ingest_user, ingest_password = userinfo(locked.files.credentials["ingest"])
    worker, reason = connect(locked.port, ingest_user, ingest_password, client_id=worker_id)
    assert not reason.is_failure, reason  # type: ignore[attr-defined]
    try:
        for user, password in (
            userinfo(locked.files.credentials["serve"]),
            userinfo(locked.files.credentials["simulate"]),
            (DEV_A, locked.secrets[DEV_A]),
        ):
            for _ in range(3):
                thief, reason = connect(locked.port, user, password, client_id=worker_id)
                thief.stop()
                assert reason.value == 0x87, (user, reason)  # type: ignore[attr-defined]
        assert not worker.disconnected.wait(0.5), "the worker was kicked off"
        assert worker.client.is_connected()
    finally:
        worker.stop()


async def test_device_ids_with_a_reserved_prefix_cannot_be_provisioned(pool: asyncpg.Pool) -> None:
    await register_devices(pool, (f"ioc-ingest-{SUFFIX}", "flood", "canonical"))
    async with pool.acquire() as conn:
        with pytest.raises(ProvisioningError, match="reserved"):
            await provisioning.provision_device(conn, f"ioc-ingest-{SUFFIX}", actor="test")


def test_device_retained_only_small_and_on_its_own_status(locked: LockedBroker) -> None:
    """Retained from a device: its status, at most RETAIN_MAX_BYTES; elsewhere or bigger, refused (0x87)."""
    dev, _ = connect(locked.port, DEV_A, locked.secrets[DEV_A])
    base = f"ioc/v1/flood/{DEV_A}"
    try:
        assert dev.publish(f"{base}/status", b"online", retain=True) < 0x80  # 16 "no subscribers", but kept
        big = b"x" * (provisioning.RETAIN_MAX_BYTES + 1)
        assert dev.publish(f"{base}/status", big, retain=True) == 0x87  # ioc_guard: too big
        assert dev.publish(f"{base}/telemetry", b"{}", retain=True) == 0x87  # ioc_guard: the ACL allows the topic
        assert dev.publish(f"{base}/snapshot", b"\xff" * 900 * 1024, retain=True) == 0x87
        assert dev.publish(f"{base}/telemetry", b"{}") < 0x80  # not retained: fine
    finally:
        dev.stop()
    serve_user, serve_password = userinfo(locked.files.credentials["serve"])
    late, _ = connect(locked.port, serve_user, serve_password)
    try:
        late.client.subscribe(f"{base}/+", qos=1)
        late.subacks.get(timeout=5)
        assert late.messages.get(timeout=5) == (f"{base}/status", b"online")
        with pytest.raises(queue.Empty):
            late.messages.get(timeout=0.5)
    finally:
        late.stop()


def test_sixty_big_retained_messages_are_refused(locked: LockedBroker) -> None:
    """Observation 5 of issue 11, run as written: 60 retained 900 KiB messages under the device's own tree."""
    dev, _ = connect(locked.port, DEV_A, locked.secrets[DEV_A])
    payload = b"r" * 900 * 1024
    try:
        refused = [dev.publish(f"ioc/v1/flood/{DEV_A}/{channel}", payload, retain=True) for channel in ["status"] * 60]
    finally:
        dev.stop()
    assert set(refused) == {0x87}


def test_topic_deeper_than_the_contract_is_refused(locked: LockedBroker) -> None:
    """``ioc/v1/flood/{id}/telemetry/x`` (issue 12 item 4): refused where the device sees it, never dropped silently."""
    sub = ingest_subscriber(locked, "#")
    dev, _ = connect(locked.port, DEV_A, locked.secrets[DEV_A])
    sim_user, sim_password = userinfo(locked.files.credentials["simulate"])
    sim, _ = connect(locked.port, sim_user, sim_password)
    try:
        assert dev.publish(f"ioc/v1/flood/{DEV_A}/telemetry/x", b"{}") == 0x87  # ACL file: one channel level
        ten_deep = f"ioc/v1/flood/{DEV_A}/telemetry/" + "/".join("abcde")
        assert dev.publish(ten_deep, b"{}") == 0x87
        assert sim.publish(ten_deep, b"{}") == 0x87  # service accounts too: every ACL line has the contract's depth
        assert dev.publish(f"ioc/v1/flood/{DEV_A}/telemetry", b"last") == 0
        assert sub.messages.get(timeout=5) == (f"ioc/v1/flood/{DEV_A}/telemetry", b"last")
    finally:
        for c in (dev, sim, sub):
            c.stop()


def test_payload_over_one_mib_disconnects_the_device(locked: LockedBroker) -> None:
    """max_packet_size 1 MiB: a bigger PUBLISH is not acknowledged and the broker closes the connection."""
    from simulators.load import connect_packet, publish_packet

    with socket.create_connection(("127.0.0.1", locked.port), timeout=5) as s:
        s.sendall(connect_packet(DEV_A, DEV_A, locked.secrets[DEV_A]))
        assert s.recv(4) == b"\x20\x02\x00\x00"
        topic = f"ioc/v1/flood/{DEV_A}/snapshot".encode()
        try:
            # The broker may close as soon as it reads the length, while we are still sending.
            s.sendall(publish_packet(len(topic).to_bytes(2, "big") + topic, b"\xff" * (1024 * 1024 + 1), 1, 1))
            answer = s.recv(16)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        assert answer == b"", "the broker closed the connection without a PUBACK"


def test_service_accounts_have_only_their_rights(locked: LockedBroker) -> None:
    sub = ingest_subscriber(locked, "ioc/v1/+/+/+")
    serve_user, serve_password = userinfo(locked.files.credentials["serve"])
    sim_user, sim_password = userinfo(locked.files.credentials["simulate"])
    serve, _ = connect(locked.port, serve_user, serve_password)
    sim, _ = connect(locked.port, sim_user, sim_password)
    try:
        serve.client.publish(f"ioc/v1/flood/{DEV_B}/telemetry", b"from serve", qos=1).wait_for_publish(5)
        sim.client.publish(f"ioc/v1/flood/{DEV_B}/telemetry", b"from sim", qos=1).wait_for_publish(5)
        assert sub.messages.get(timeout=5)[1] == b"from sim"
        assert sub.messages.empty()
    finally:
        for c in (serve, sim, sub):
            c.stop()


async def test_revoked_device_is_cut_off_and_refused(locked: LockedBroker, pool: asyncpg.Pool) -> None:
    dev, reason = connect(locked.port, DEV_B, locked.secrets[DEV_B])
    assert not reason.is_failure, reason  # type: ignore[attr-defined]
    async with pool.acquire() as conn:
        assert await provisioning.revoke_device(conn, DEV_B, actor="test")
        await provisioning.write_broker_files(conn, locked.mosquitto.root)
        rows = await audit.recent(conn, action="device.revoke", target=DEV_B)
    assert rows and rows[0].outcome == "success"
    assert DEV_B not in locked.files.password_file.read_text()
    locked.mosquitto.reload()
    try:
        assert dev.disconnected.wait(5), "the broker kept the revoked device connected after SIGHUP"
    finally:
        dev.stop()
    again, reason = connect(locked.port, DEV_B, locked.secrets[DEV_B])
    again.stop()
    assert reason.is_failure, reason  # type: ignore[attr-defined]
    # The reload re-registered the files' checks after the plugin's: ioc_guard still answers first.
    dev_a, _ = connect(locked.port, DEV_A, locked.secrets[DEV_A])
    dev_a.client.subscribe("$share/ioc-ingest/ioc/v1/+/+/+", qos=1)
    assert [r.value for r in dev_a.subacks.get(timeout=5)] == [0x87]  # type: ignore[attr-defined]
    dev_a.stop()


@pytest.mark.parametrize("device_id", ["a+b", "#", "a/b", "x/#", "", "a b"])
async def test_wildcard_ids_cannot_be_provisioned(pool: asyncpg.Pool, device_id: str) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(ProvisioningError):
            await provisioning.provision_device(conn, device_id, actor="test")
        assert await conn.fetchval("SELECT count(*) FROM mqtt_accounts WHERE username = $1", device_id) == 0
        rows = await audit.recent(conn, action="device.provision", target=device_id, limit=1)
    assert rows and rows[0].outcome == "failure"


def test_cli_provisions_and_rewrites_files(
    locked: LockedBroker, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("devices").add_subparsers(dest="devices_command").add_parser("list")
    security_cli.add_parsers(sub)
    args = parser.parse_args(["devices", "provision", DEV_L, "--dir", str(tmp_path)])
    assert args.func(args, settings) == 0
    secret = capsys.readouterr().out.split("store it on the device now):\n")[1].split("\n")[0]
    line = next(ln for ln in (tmp_path / "passwd").read_text().splitlines() if ln.startswith(f"{DEV_L}:"))
    assert provisioning.verify_mosquitto_hash(secret, line.split(":", 1)[1])
    assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o600
    assert f"topic write legacy/flood/{DEV_L}" in (tmp_path / "acl").read_text()
    args = parser.parse_args(["devices", "provision", "bad+id", "--dir", str(tmp_path)])
    with pytest.raises(ProvisioningError):
        args.func(args, settings)


def test_tls_listener_with_throwaway_ca(locked: LockedBroker, throwaway_ca: Path, tmp_path: Path) -> None:
    tls = TlsListener(free_port(), throwaway_ca / "server.crt", throwaway_ca / "server.key", host="127.0.0.1")
    broker = EmbeddedMosquitto(
        tmp_path, free_port(), extra=[*locked.files.config_lines(), *tls.config_lines()]
    )
    broker.start()
    try:
        good, reason = connect(
            tls.port, DEV_A, locked.secrets[DEV_A], context=client_context(throwaway_ca / "ca.crt")
        )
        good.stop()
        assert not reason.is_failure, reason  # type: ignore[attr-defined]
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(tls.port, DEV_A, locked.secrets[DEV_A], context=client_context())
    finally:
        broker.stop()

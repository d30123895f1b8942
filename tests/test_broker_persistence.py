"""ioc's Mosquitto build (broker/persist-shared-subscriptions.patch): a persistent session's shared
subscription survives a broker restart, so messages published before its client comes back are queued
for it instead of being answered "no matching subscribers" and discarded."""

from __future__ import annotations

import logging
import queue
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ioc.broker import MOSQUITTO_LIBDIR, EmbeddedMosquitto
from ioc.errors import StackError
from ioc.processes import free_port

SHARE = "$share/ioc-ingest/restart/+"


class Session:
    """An MQTT 5 client with a persistent session (clean_start off, one hour expiry), like an ingest worker."""

    def __init__(self, port: int, client_id: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack: queue.Queue[tuple[bool, object]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, flags, reason, p: self.connack.put((flags.session_present, reason))
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.subacks: queue.Queue[object] = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self.subacks.put(reasons)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()

    def session_present(self) -> bool:
        """Wait for the CONNACK; whether the broker still had our session."""
        present, reason = self.connack.get(timeout=10)
        assert not reason.is_failure, reason  # type: ignore[attr-defined]
        return bool(present)

    def subscribe(self, topic_filter: str) -> None:
        """Subscribe at QoS 1 and wait for the SUBACK."""
        self.client.subscribe(topic_filter, qos=1)
        assert not self.subacks.get(timeout=5)[0].is_failure  # type: ignore[index]

    def close(self) -> None:
        """Disconnect and keep the session on the broker."""
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, payload: bytes) -> int:
    """Publish one QoS 1 message over MQTT 5; the PUBACK's reason code (16: no matching subscribers)."""
    acks: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    client.on_publish = lambda c, u, mid, reason, p: acks.put(reason.value)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        return acks.get(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_we_run_ioc_mosquitto_build() -> None:
    broker = EmbeddedMosquitto(Path("/nonexistent"), 0)
    binary = broker.find_binary()
    assert binary == Path("/usr/local/sbin/mosquitto"), "the stack prefers ioc's build (make setup)"
    assert (MOSQUITTO_LIBDIR / "BUILD").is_file() and (MOSQUITTO_LIBDIR / "ioc_guard.so").is_file()


def test_missing_plugin_is_refused_and_an_unpatched_broker_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(StackError, match="plugin /nonexistent/ioc_guard.so is missing"):
        EmbeddedMosquitto(tmp_path, free_port(), extra=["plugin /nonexistent/ioc_guard.so"]).start()
    debian = Path("/usr/sbin/mosquitto")
    if not debian.exists():
        pytest.fail("Debian's mosquitto package (make setup installs it for its clients) is missing")
    broker = EmbeddedMosquitto(tmp_path, free_port(), binary=debian)
    with caplog.at_level(logging.WARNING, logger="ioc.broker"):
        broker.start()
    broker.stop()
    assert "is not ioc's Mosquitto build" in caplog.text


@pytest.mark.parametrize("restarts", [1, 2])
def test_shared_subscription_of_an_offline_session_survives_restarts(tmp_path: Path, restarts: int) -> None:
    broker = EmbeddedMosquitto(tmp_path, free_port())
    broker.start()
    try:
        worker = Session(broker.port, "ioc-ingest-persist")
        assert not worker.session_present()
        worker.subscribe(SHARE)
        assert publish(broker.port, "restart/a", b"before") == 0
        assert worker.messages.get(timeout=5) == ("restart/a", b"before")
        worker.close()

        for _ in range(restarts):
            broker.stop()
            broker.start()
        # The worker is still away: the broker must queue for its restored shared subscription.
        assert publish(broker.port, "restart/a", b"while away") == 0, "PUBACK 16: the subscription was forgotten"

        back = Session(broker.port, "ioc-ingest-persist")
        try:
            assert back.session_present()
            assert back.messages.get(timeout=5) == ("restart/a", b"while away")
            # Still shared, not turned into a plain subscription: a second member takes turns.
            other = Session(broker.port, "ioc-ingest-other")
            other.session_present()
            other.subscribe(SHARE)
            for i in range(4):
                assert publish(broker.port, "restart/b", str(i).encode()) == 0
            got: dict[str, set[bytes]] = {"back": set(), "other": set()}
            deadline = time.monotonic() + 5
            while sum(map(len, got.values())) < 4 and time.monotonic() < deadline:
                for name, session in (("back", back), ("other", other)):
                    try:
                        got[name].add(session.messages.get(timeout=0.05)[1])
                    except queue.Empty:
                        pass
            assert got["back"] and got["other"], got
            assert got["back"] | got["other"] == {b"0", b"1", b"2", b"3"}
            other.close()
        finally:
            back.close()
    finally:
        broker.stop()

"""Broker addresses and per-device paho connections, each with its own last will."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and how to log in, from ``mqtt://user:pass@host:port`` (or ``mqtts://``)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; the port defaults to 1883 (8883 for mqtts)."""
        parts = urlsplit(url)
        if parts.scheme not in {"mqtt", "mqtts", "tcp"} or not parts.hostname:
            raise ValueError(f"broker URL {url!r} must look like mqtt://host:port")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


class DeviceConnection:
    """One simulated device's own MQTT connection (client id ``sim-{device_id}``) with an ``offline`` will."""

    def __init__(self, address: BrokerAddress, device_id: str, will_topic: str) -> None:
        self.device_id = device_id
        self.acked = 0
        self.errors = 0
        self._connected = threading.Event()
        self._lock = threading.Lock()
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"sim-{device_id}",
            protocol=mqtt.MQTTv311,
        )
        if address.username:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(will_topic, b"offline", qos=1, retain=True)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._address = address

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            logger.warning("device %s: broker refused the connection: %s", self.device_id, reason)
            return
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self._connected.clear()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        with self._lock:
            self.acked += 1

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after a network error."""
        self._client.connect_async(self._address.host, self._address.port, keepalive=30)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the broker has accepted the connection."""
        return self._connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        """Queue one message; failures are counted, never raised."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.errors += 1
            logger.debug(
                "device %s: publish to %s failed: %s", self.device_id, topic, mqtt.error_string(info.rc)
            )
        return info

    def drop(self) -> threading.Thread:
        """Vanish without DISCONNECT, as a device losing power: the broker publishes the will at once.

        The socket is shut down here; stopping paho's network thread takes up to a second, so that
        happens on the returned helper thread."""
        self._connected.clear()
        sock = self._client.socket()
        dropper = threading.Thread(
            target=self._reap, args=(sock,), name=f"drop-{self.device_id}", daemon=True
        )
        dropper.start()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return dropper

    def _reap(self, sock: object) -> None:
        self._client.loop_stop()
        if isinstance(sock, socket.socket):
            sock.close()

    def close(self, pending: list[mqtt.MQTTMessageInfo], timeout: float) -> None:
        """Wait for ``pending`` acknowledgements, then disconnect cleanly (no will)."""
        deadline = time.monotonic() + timeout
        for info in pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                info.wait_for_publish(remaining)
            except (RuntimeError, ValueError):
                break
        self._client.disconnect()
        self._client.loop_stop()

"""MQTT 5 test clients that record what the broker answers: CONNACK, SUBACKs, PUBACKs, messages, disconnects."""

from __future__ import annotations

import queue
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Client:
    """A paho client that records its CONNACK, SUBACKs, messages and disconnects."""

    client: mqtt.Client
    connack: queue.Queue[object] = field(default_factory=queue.Queue)
    subacks: queue.Queue[list[object]] = field(default_factory=queue.Queue)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    pubacks: queue.Queue[int] = field(default_factory=queue.Queue)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK's reason code (0 accepted, 0x87 refused by the broker)."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
        return self.pubacks.get(timeout=5)

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    port: int,
    user: str | None,
    password: str | None,
    *,
    context: ssl.SSLContext | None = None,
    client_id: str | None = None,
) -> tuple[Client, object]:
    """Connect (MQTT 5) and return the client with its CONNACK reason code."""
    if client_id is None:
        # A device must use its own id (ioc_guard); a service account any id outside the reserved prefixes.
        client_id = user if user and "." not in user else f"t-{uuid.uuid4().hex[:8]}"
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    rec = Client(c)
    if user is not None:
        c.username_pw_set(user, password)
    if context is not None:
        c.tls_set_context(context)
    c.on_connect = lambda cl, ud, flags, reason, props: rec.connack.put(reason)
    c.on_subscribe = lambda cl, ud, mid, reasons, props: rec.subacks.put(list(reasons))
    c.on_message = lambda cl, ud, msg: rec.messages.put((msg.topic, msg.payload))
    c.on_publish = lambda cl, ud, mid, reason, props: rec.pubacks.put(reason.value)
    c.on_disconnect = lambda cl, ud, flags, reason, props: rec.disconnected.set()
    c.connect("127.0.0.1" if context is None else "localhost", port, keepalive=10)
    c.loop_start()
    reason = rec.connack.get(timeout=10)
    return rec, reason


def userinfo(credentials: str) -> tuple[str, str]:
    """``user:password`` (percent-encoded) split into its parts."""
    user, _, password = credentials.partition(":")
    return unquote(user), unquote(password)

"""The MQTT side of the ingest: a paho-mqtt client whose thread only hands messages to asyncio.

QoS 1, MQTT v5, a persistent session (fixed client id, session expiry) and a shared subscription
so several workers split the stream; messages are acknowledged by the writer only after commit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.spool import RawMessage
from ioc.errors import ConfigError
from ioc.tls import client_context

logger = logging.getLogger(__name__)

PUBACK = 0x40
PUBACK_HEADER = b"\x40\x02"  # PUBACK, remaining length 2 (packet id; v5 omits the success reason code)


def client_from_url(
    url: str, client_id: str, *, protocol: int = mqtt.MQTTv5, manual_ack: bool = False, tls_ca: Path | None = None
) -> tuple[mqtt.Client, str, int]:
    """A paho client configured from ``mqtt[s]://user:pass@host:port``; returns (client, host, port)."""
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts", "tcp"} or not parts.hostname:
        raise ConfigError(f"bad MQTT URL {url!r}: expected mqtt://[user:pass@]host[:port]")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, manual_ack=manual_ack)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set_context(client_context(tls_ca))
    return client, parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883)


class Bridge:
    """Subscribes and buffers arriving messages for the asyncio side; acks on request."""

    def __init__(
        self,
        url: str,
        client_id: str,
        filters: Sequence[str],
        share_group: str | None,
        receive_maximum: int,
        loop: asyncio.AbstractEventLoop,
        session_expiry_s: int = 3600,
        tls_ca: Path | None = None,
    ) -> None:
        self.client, self.host, self.port = client_from_url(url, client_id, manual_ack=True, tls_ca=tls_ca)
        self.filters = [f"$share/{share_group}/{f}" if share_group else f for f in filters]
        self.receive_maximum = receive_maximum
        self.session_expiry_s = session_expiry_s
        self.loop = loop
        self.buffer: deque[RawMessage] = deque()
        self.ready = asyncio.Event()
        self.connected = asyncio.Event()
        self._wakeup_pending = False
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.5, 10)

    # --- paho thread: convert, hand off, return -------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            logger.error("broker refused the connection: %s", reason)
            return
        client.subscribe([(f, 1) for f in self.filters])
        logger.info(
            "connected to the broker",
            extra={"host": self.host, "port": self.port, "session_present": getattr(flags, "session_present", None)},
        )
        self.loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        logger.warning("disconnected from the broker: %s (reconnecting)", reason)
        self.loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.buffer.append(RawMessage(msg.topic, msg.payload, time.time(), msg.mid, msg.qos))
        with self._lock:
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        self.loop.call_soon_threadsafe(self._wake)

    # --- asyncio side ---------------------------------------------------------------------------
    def _wake(self) -> None:
        with self._lock:
            self._wakeup_pending = False
        self.ready.set()

    def start(self) -> None:
        """Connect (persistent session) and start the network thread."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()

    def unsubscribe(self) -> None:
        """Stop new deliveries (first step of a clean shutdown)."""
        self.client.unsubscribe(self.filters)

    def stop(self, end_session: bool = True) -> None:
        """Disconnect, by default ending the session: a stopped worker must not keep a share of the stream.

        Mosquitto keeps routing a shared subscription's messages to an offline persistent session, so
        only a crashed worker (which never gets here) keeps its session, to resume it on restart.
        """
        props = Properties(PacketTypes.DISCONNECT)
        if end_session:
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()

    def take(self, limit: int) -> list[RawMessage]:
        """Up to ``limit`` buffered messages, oldest first."""
        out: list[RawMessage] = []
        buf = self.buffer
        while buf and len(out) < limit:
            out.append(buf.popleft())
        if not buf:
            self.ready.clear()
            if buf:  # a message slipped in between: keep the event set
                self.ready.set()
        return out

    def ack(self, messages: Sequence[RawMessage]) -> None:
        """Acknowledge messages whose rows are committed (or spooled), in receive order.

        paho sends each ``ack()`` as its own packet with a wake-up of its thread (~5 us here); a batch's
        PUBACKs go out as one write through paho's packet queue instead (0.3 us each, measured). The
        public per-message call is the fallback should that internal method change.
        """
        mids = [m.mid for m in messages if m.qos == 1]
        if not mids:
            return
        queue = getattr(self.client, "_packet_queue", None)
        if queue is None:
            for mid in mids:
                self.client.ack(mid, 1)
            return
        queue(PUBACK, b"".join(PUBACK_HEADER + mid.to_bytes(2, "big") for mid in mids), 0, 0)

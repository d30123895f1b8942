"""The MQTT side of the ingest: paho-mqtt driven by the asyncio event loop, with buffered socket reads.

QoS 1, MQTT v5, a persistent session (fixed client id, session expiry) and a shared subscription
so several workers split the stream; messages are acknowledged by the writer only after commit.

paho runs on the worker's event loop through its external-loop API (``loop_read``, ``loop_write``,
``loop_misc`` and the socket callbacks) instead of its own network thread. Measured on this machine,
the thread cost more than it gave: each message was ~4 ``recv`` system calls by the paho thread, and
each call had to win the GIL back from the decoding and writing thread. Here one ``recv`` reads up to
64 KiB (hundreds of messages) and nothing waits for the GIL. Only the blocking TCP/TLS connect runs
in a thread of the default executor. paho's private members are used only through ``ingest.paho_fast``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.paho_fast import FastClient
from ioc.backoff import Backoff
from ioc.errors import ConfigError
from ioc.records import RawMessage
from ioc.tls import client_context

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

logger = logging.getLogger(__name__)

PACKETS_PER_TURN = 2000  # then yield to the event loop so the writers keep committing


def client_from_url(
    url: str,
    client_id: str,
    *,
    protocol: int = mqtt.MQTTv5,
    manual_ack: bool = False,
    tls_ca: Path | None = None,
    factory: Callable[..., mqtt.Client] = mqtt.Client,
) -> tuple[mqtt.Client, str, int]:
    """A paho client configured from ``mqtt[s]://user:pass@host:port``; returns (client, host, port)."""
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts", "tcp"} or not parts.hostname:
        raise ConfigError(f"bad MQTT URL {url!r}: expected mqtt://[user:pass@]host[:port]")
    client = factory(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, manual_ack=manual_ack)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set_context(client_context(tls_ca))
    return client, parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883)


class Bridge:
    """Subscribes and buffers arriving messages for the collector; acks on request. Lives on one event loop."""

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
        client, self.host, self.port = client_from_url(
            url, client_id, manual_ack=True, tls_ca=tls_ca, factory=FastClient
        )
        assert isinstance(client, FastClient)
        self.client = client
        self.filters = [f"$share/{share_group}/{f}" if share_group else f for f in filters]
        self.receive_maximum = receive_maximum
        self.session_expiry_s = session_expiry_s
        self.loop = loop
        self.buffer: deque[RawMessage] = deque()
        self.ready = asyncio.Event()
        self.connected = asyncio.Event()
        self._sock: SocketLike | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connecting = False
        self._stopping = False
        self._retry = Backoff(first=0.5, ceiling=10.0)
        self.unacked = 0  # QoS 1 messages received on this connection and not yet acknowledged
        self._paused = False
        self._loop_thread = threading.get_ident()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.publish_sink = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    # --- paho callbacks (event-loop thread, except socket open/close during a connect) -----------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            logger.error("broker refused the connection: %s", reason)
            return
        client.subscribe([(f, 1) for f in self.filters])
        self._retry.succeeded()
        logger.info(
            "connected to the broker",
            extra={"host": self.host, "port": self.port, "session_present": getattr(flags, "session_present", None)},
        )
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.connected.clear()
        if self._stopping:
            return
        logger.warning("disconnected from the broker: %s (reconnecting)", reason)
        self._spawn(self._connect_loop())

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._on_publish(msg.topic, bytes(msg.payload), msg.mid, msg.qos)

    def _on_publish(self, topic: str, payload: bytes, mid: int, qos: int) -> bool:
        """Buffer a message; False once the receive window is full (stop reading)."""
        self.buffer.append(RawMessage(topic, payload, time.time(), mid, qos))
        self.ready.set()
        if qos:
            self.unacked += 1
            if self.unacked >= self.receive_maximum and not self._paused:
                self._pause()
        return not self._paused

    # --- flow control -----------------------------------------------------------------------------
    # Mosquitto 2.0 honours the client's Receive Maximum only for the first window: measured here,
    # once any PUBACK arrives it sends everything queued (100 unacked, 50 acked -> 900 more). So the
    # bridge enforces the window itself: at ``receive_maximum`` unacknowledged messages it stops
    # reading the socket (TCP pushes back, the broker queues for the session) and resumes at 3/4.
    def _pause(self) -> None:
        self._paused = True
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(self._sock)
        logger.debug("receive window full (%d unacknowledged): pausing reads", self.unacked)

    def _resume(self) -> None:
        self._paused = False
        if self._sock is not None:
            self.loop.add_reader(self._sock, self._readable)
            self.loop.call_soon(self._readable)  # bytes already buffered do not wake the selector

    def _in_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: mqtt.Client, userdata: object, sock: SocketLike) -> None:
        def attach() -> None:
            self._sock = sock
            self.unacked, self._paused = 0, False  # the broker redelivers what the last connection left unacked
            self.loop.add_reader(sock, self._readable)

        self._in_loop(attach)

    def _on_socket_close(self, client: mqtt.Client, userdata: object, sock: SocketLike) -> None:
        def detach() -> None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(sock)
                self.loop.remove_writer(sock)
            if self._sock is sock:
                self._sock = None

        self.client.read_buffer.clear()
        self._in_loop(detach)

    def _on_register_write(self, client: mqtt.Client, userdata: object, sock: SocketLike) -> None:
        self._in_loop(lambda: self.loop.add_writer(sock, self._writable))

    def _on_unregister_write(self, client: mqtt.Client, userdata: object, sock: SocketLike) -> None:
        def unregister() -> None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_writer(sock)

        self._in_loop(unregister)

    # --- socket events ----------------------------------------------------------------------------
    def _readable(self) -> None:
        """Handle every complete packet already received (a bounded number per turn of the loop): PUBLISH
        packets in bulk (``read_publishes``), any other packet through paho's ``loop_read``."""
        client = self.client
        budget = PACKETS_PER_TURN
        while budget > 0:
            if self._paused or self._sock is None:
                return
            handed, paho_next = client.read_publishes(budget)
            budget -= handed
            if paho_next:
                if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return
                budget -= 1
            elif budget > 0:
                return  # nothing more on the socket, or the receive window is full
        if self._has_more():
            self.loop.call_soon(self._readable)  # buffered bytes do not wake the selector: come back for them

    def _has_more(self) -> bool:
        if self.client.read_buffer:
            return True
        pending = getattr(self._sock, "pending", None)  # TLS: decrypted bytes the selector cannot see
        return bool(pending and pending())

    def _writable(self) -> None:
        self.client.loop_write()

    async def _misc_loop(self) -> None:
        """Keepalive pings and the broker's silence check, once a second."""
        while not self._stopping:
            await asyncio.sleep(1.0)
            if self._sock is not None:
                self.client.loop_misc()

    async def _connect_loop(self) -> None:
        """Connect (TCP and TLS in an executor thread), retrying with backoff until connected or stopped."""
        if self._connecting:
            return
        self._connecting = True
        try:
            while not self._stopping:
                try:
                    await self.loop.run_in_executor(None, self.client.reconnect)
                    return
                except (OSError, ValueError) as exc:
                    logger.warning("cannot reach the broker at %s:%s (%s): retrying", self.host, self.port, exc)
                await asyncio.sleep(self._retry.failed())
        finally:
            self._connecting = False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- asyncio side ---------------------------------------------------------------------------
    def start(self) -> None:
        """Connect (persistent session) in the background; reconnects by itself."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self._spawn(self._connect_loop())
        self._spawn(self._misc_loop())

    def unsubscribe(self) -> None:
        """Stop new deliveries (first step of a clean shutdown)."""
        self.client.unsubscribe(self.filters)

    def stop(self, end_session: bool = True) -> None:
        """Disconnect, by default ending the session: a stopped worker must not keep a share of the stream.

        Mosquitto keeps routing a shared subscription's messages to an offline persistent session, so
        only a crashed worker (which never gets here) keeps its session, to resume it on restart.
        """
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        props = Properties(PacketTypes.DISCONNECT)
        if end_session:
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        deadline = time.monotonic() + 2.0
        while self.client.want_write() and self._sock is not None and time.monotonic() < deadline:
            if self.client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        if self._sock is not None:
            self.client.close_socket()

    def take(self, limit: int) -> list[RawMessage]:
        """Up to ``limit`` buffered messages, oldest first."""
        out: list[RawMessage] = []
        buf = self.buffer
        while buf and len(out) < limit:
            out.append(buf.popleft())
        if not buf:
            self.ready.clear()
        return out

    def ack(self, messages: Sequence[RawMessage]) -> None:
        """Acknowledge messages whose rows are committed (or spooled), in receive order, as one write.

        Nothing is sent while disconnected: the broker redelivers.
        """
        if not self.connected.is_set():
            return
        mids = [m.mid for m in messages if m.qos == 1]
        if not mids:
            return
        self.unacked = max(0, self.unacked - len(mids))
        if self._paused and self.unacked <= self.receive_maximum * 3 // 4:
            self._resume()
        self.client.queue_pubacks(mids)

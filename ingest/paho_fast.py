"""Every use of paho-mqtt's private members, in one module, checked against the pinned paho version.

The ingest takes three measured shortcuts through paho's receive path and one through its send path:

- Socket reads go through a buffer (``_sock_recv``): paho reads a packet as several small ``recv`` calls
  (command byte, each length byte, the rest); one 64 KiB read here serves hundreds of packets.
- ``read_publishes``: the QoS 0/1 PUBLISH packets at the head of that buffer are cut out and parsed in
  one loop, never entering paho's per-packet state machine (``_packet_read``: a dict reset, a lock and
  three to five buffer reads per packet); anything else (CONNACK, SUBACK, PINGRESP, a QoS 2 PUBLISH)
  is left for paho's ``loop_read``. It marks the bytes received (``_last_bytes_received``) as paho does.
- A PUBLISH that does reach paho (after another packet in the same read) is still parsed by
  ``parse_publish`` and handed to ``publish_sink`` directly (``_handle_publish``, reading ``_in_packet``),
  without paho's message object, property parsing and callback matching.
- A batch's PUBACKs go out as one write through ``_packet_queue`` (paho's ``ack()`` sends one packet each).

Private names can change in any paho release, so pyproject pins paho to ``TESTED_MINOR`` and the client
checks, when it is built (the ingest's start), that paho is that version and that each private has the
signature the overrides expect; otherwise it raises ``PahoIncompatible`` and the ingest does not start. The test
``tests/test_ingest_bridge.py::test_the_fast_paths_are_taken`` fails when a fast path is not taken.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from ioc.errors import ConfigError

logger = logging.getLogger(__name__)

TESTED_MINOR = "2.2"  # the paho-mqtt version these overrides were written and measured against
READ_CHUNK = 65536
PUBACK = 0x40
PUBACK_HEADER = b"\x40\x02"  # PUBACK, remaining length 2 (packet id; v5 omits the success reason code)
# The privates used here, with the parameters each must have.
PRIVATES: dict[str, tuple[str, ...]] = {
    "_handle_publish": ("self",),
    "_sock_recv": ("self", "bufsize"),
    "_sock_close": ("self",),
    "_packet_queue": ("self", "command", "packet", "mid", "qos", "info"),
}
IN_PACKET_KEYS = ("command", "packet")  # what the PUBLISH override reads from ``_in_packet``
ATTRIBUTES = ("_last_bytes_received",)  # instance privates ``read_publishes`` sets, and paho's module clock
MODULE_NAMES = ("time_func",)

# (topic, packet id, QoS, payload) -> False to stop reading (the receive window is full).
PublishSink = Callable[[str, bytes, int, int], bool]


class PahoIncompatible(ConfigError):
    """The installed paho-mqtt is not the version whose private members the ingest uses."""


def check_paho(client_class: type = mqtt.Client, version: str | None = None) -> None:
    """Raise PahoIncompatible unless paho is TESTED_MINOR and has every private in PRIVATES as expected."""
    version = version or paho.mqtt.__version__
    if version != TESTED_MINOR and not version.startswith(f"{TESTED_MINOR}."):
        raise PahoIncompatible(
            f"paho-mqtt {version} is installed; the ingest's fast path (ingest/paho_fast.py) is tested with "
            f"{TESTED_MINOR}.x only: install the version in constraints.txt"
        )
    missing = [name for name in MODULE_NAMES if not hasattr(mqtt, name)]
    if missing:
        raise PahoIncompatible(f"paho-mqtt {version}: paho.mqtt.client has no {', '.join(missing)}")
    for name, expected in PRIVATES.items():
        member = getattr(client_class, name, None)
        params = tuple(inspect.signature(member).parameters) if callable(member) else None
        if params != expected:
            found = "missing" if params is None else f"({', '.join(params)})"
            raise PahoIncompatible(
                f"paho-mqtt {version}: {client_class.__name__}.{name} is {found}, "
                f"ingest/paho_fast.py needs ({', '.join(expected)})"
            )


def parse_publish(command: int, packet: bytes | bytearray) -> tuple[str, int, int, bytes]:
    """(topic, packet id, QoS, payload) of an MQTT 5 PUBLISH at QoS 0 or 1; ValueError when malformed.

    Properties are skipped: the broker sends none that matter here (no topic aliases are allowed, as
    the client's Topic Alias Maximum is 0).
    """
    qos = (command & 0x06) >> 1
    try:
        end = 2 + ((packet[0] << 8) | packet[1])
        if end > len(packet):
            raise ValueError("topic longer than the packet")
        topic = packet[2:end].decode("utf-8", "replace")
        mid = 0
        if qos:
            mid = (packet[end] << 8) | packet[end + 1]
            end += 2
        length, shift = 0, 0
        while True:
            byte = packet[end]
            end += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ValueError("property length longer than 4 bytes")
        end += length
    except IndexError:
        raise ValueError("PUBLISH shorter than its header") from None
    if end > len(packet):
        raise ValueError("properties longer than the packet")
    return topic, mid, qos, bytes(packet[end:])


def fixed_header(buf: bytearray, at: int) -> tuple[int, int]:
    """(body start, packet end) of the packet at ``buf[at]``; (0, 0) while incomplete, (-1, -1) when its
    remaining length runs past the 4 bytes MQTT allows."""
    length, shift, pos, size = 0, 0, at + 1, len(buf)
    while pos < size:
        byte = buf[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            end = pos + length
            return (pos, end) if end <= size else (0, 0)
        shift += 7
        if shift > 21:
            return -1, -1
    return 0, 0


class FastClient(mqtt.Client):
    """A paho client with the buffered read, the direct PUBLISH sink and batched PUBACKs.

    ``fast_publishes`` counts the PUBLISH packets that took the direct path (the test reads it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_paho()  # a paho that renamed a private fails here, loudly, never silently slower
        missing = [key for key in IN_PACKET_KEYS if key not in self._in_packet]
        missing += [name for name in ATTRIBUTES if not hasattr(self, name)]
        if missing:
            raise PahoIncompatible(f"paho-mqtt's client has no {', '.join(missing)}: see ingest/paho_fast.py")
        self.read_buffer = bytearray()
        self.publish_sink: PublishSink | None = None
        self.fast_publishes = 0
        self.bulk_publishes = 0  # of which read by ``read_publishes``

    def _handle_publish(self) -> MQTTErrorCode:
        sink = self.publish_sink
        command = self._in_packet["command"]
        if sink is None or self.protocol != mqtt.MQTTv5 or command & 0x06 > 0x02:
            return super()._handle_publish()  # QoS 2, another protocol or no sink: paho's own path (on_message)
        try:
            topic, mid, qos, payload = parse_publish(command, self._in_packet["packet"])
        except ValueError as exc:
            logger.error("malformed PUBLISH from the broker (%s): reconnecting", exc)
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        self.fast_publishes += 1
        sink(topic, payload, mid, qos)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def read_publishes(self, limit: int) -> tuple[int, bool]:
        """Hand up to ``limit`` QoS 0/1 PUBLISH packets from the socket to ``publish_sink``, reading until it
        would block; returns (handed, paho_next). ``paho_next``: the next packet is for paho's ``loop_read``
        (another kind, paho is inside one, or the connection is closing). Stops early when the sink says so.
        """
        sink = self.publish_sink
        if sink is None or self.protocol != mqtt.MQTTv5 or self._in_packet["command"]:
            return 0, True
        buf = self.read_buffer
        at = handed = 0
        paho_next = False
        try:
            while handed < limit:
                body = end = 0
                if len(buf) - at >= 2:
                    command = buf[at]
                    if command & 0xF0 != 0x30 or command & 0x06 > 0x02:
                        paho_next = True
                        break
                    body, end = fixed_header(buf, at)
                    if body < 0:
                        paho_next = True  # paho's path refuses it and disconnects
                        break
                if not end:
                    try:
                        data = super()._sock_recv(READ_CHUNK)
                    except BlockingIOError:
                        break
                    except OSError:
                        paho_next = True  # paho's read meets the error and disconnects
                        break
                    if not data:
                        paho_next = True  # closed: paho's read sees it
                        break
                    del buf[:at]
                    at = 0
                    buf += data
                    continue
                try:
                    topic, mid, qos, payload = parse_publish(buf[at], buf[body:end])
                except ValueError:
                    paho_next = True  # paho's path (``_handle_publish``) logs it and disconnects
                    break
                at = end
                handed += 1
                if not sink(topic, payload, mid, qos):
                    break
        finally:
            del buf[:at]
            if handed:
                self.fast_publishes += handed
                self.bulk_publishes += handed
                self._last_bytes_received = mqtt.time_func()
        return handed, paho_next

    def _sock_recv(self, bufsize: int) -> bytes:
        buf = self.read_buffer
        if not buf:
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError when nothing is there; b"" when closed
            if len(data) <= bufsize:
                return data
            buf += data
        out = bytes(buf[:bufsize])
        del buf[:bufsize]
        return out

    def queue_pubacks(self, mids: Iterable[int]) -> None:
        """Queue the PUBACKs of QoS 1 packet ids as one write (0.3 us each, measured)."""
        self._packet_queue(PUBACK, b"".join(PUBACK_HEADER + mid.to_bytes(2, "big") for mid in mids), 0, 0)

    def close_socket(self) -> None:
        """Close the socket now (paho closes it only once a queued DISCONNECT is written)."""
        self._sock_close()

"""Every use of paho-mqtt's private members, in one module, checked against the pinned paho version.

The ingest takes two measured shortcuts through paho's receive path and one through its send path:

- Socket reads go through a buffer (``_sock_recv``): paho reads a packet as several small ``recv`` calls
  (command byte, each length byte, the rest); one 64 KiB read here serves hundreds of packets.
- An MQTT 5 PUBLISH at QoS 0/1 is parsed by ``parse_publish`` and handed to ``publish_sink`` directly
  (``_handle_publish``, reading ``_in_packet``), without paho's message object, property parsing and
  callback matching: a third of the ingest's CPU at 10,000 msg/s.
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

PublishSink = Callable[[str, bytes, int, int], None]


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


class FastClient(mqtt.Client):
    """A paho client with the buffered read, the direct PUBLISH sink and batched PUBACKs.

    ``fast_publishes`` counts the PUBLISH packets that took the direct path (the test reads it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_paho()  # a paho that renamed a private fails here, loudly, never silently slower
        missing = [key for key in IN_PACKET_KEYS if key not in self._in_packet]
        if missing:
            raise PahoIncompatible(f"paho-mqtt's _in_packet has no {', '.join(missing)}: see ingest/paho_fast.py")
        self.read_buffer = bytearray()
        self.publish_sink: PublishSink | None = None
        self.fast_publishes = 0

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

"""The ingest's MQTT bridge against the real broker: a bounded receive window, batched acknowledgements, and
the fast paths through paho's privates (ingest/paho_fast.py) really taken."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import CallbackAPIVersion

from ingest.bridge import Bridge
from ingest.paho_fast import TESTED_MINOR, FastClient, PahoIncompatible, check_paho, fixed_header, parse_publish
from tests.support.stack import Broker


async def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def publish(broker: Broker, topic: str, count: int) -> None:
    """``count`` QoS 1 messages, each acknowledged by the broker before this returns."""
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.username_pw_set(broker.user, broker.password)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        infos = [pub.publish(topic, f'{{"n": {i}}}'.encode(), qos=1) for i in range(count)]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


@contextlib.asynccontextmanager
async def subscribed_bridge(broker: Broker, name: str) -> AsyncIterator[tuple[Bridge, str]]:
    """A bridge (receive window 100) and the topic it is subscribed to, its SUBACK received; stopped at the end."""
    device = f"{name}-{uuid.uuid4().hex[:8]}"
    topic = f"ioc/v1/flood/{device}/telemetry"
    loop = asyncio.get_running_loop()
    bridge = Bridge(broker.reader_url, f"test-{device}", [topic], None, 100, loop, 60)
    subscribed = asyncio.Event()
    bridge.client.on_subscribe = lambda *args: loop.call_soon_threadsafe(subscribed.set)
    bridge.start()
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        yield bridge, topic
    finally:
        bridge.stop()


async def test_unacknowledged_messages_never_exceed_the_receive_window(broker: Broker) -> None:
    """Memory stays bounded when the database is slow: at most ``receive_maximum`` messages held unacked."""
    loop = asyncio.get_running_loop()
    async with subscribed_bridge(broker, "win") as (bridge, topic):
        await loop.run_in_executor(None, publish, broker, topic, 1000)
        await wait_until(lambda: len(bridge.buffer) >= 100)
        await asyncio.sleep(0.5)  # the thing under test is an absence: no 101st message arrives meanwhile
        assert len(bridge.buffer) == 100  # the window, not the 1000 the broker holds for us

        first = bridge.take(1000)
        bridge.ack(first[:50])  # 50 committed: room for 50 more (hysteresis: resume at 3/4 of the window)
        await wait_until(lambda: len(bridge.buffer) >= 50)
        await asyncio.sleep(0.5)  # the thing under test is an absence: no 51st message arrives meanwhile
        assert len(bridge.buffer) == 50
        assert bridge.unacked == 100

        received = first + bridge.take(1000)
        acked = 50
        while len(received) < 1000:  # commit and acknowledge what is held, in order, until all has arrived
            bridge.ack(received[acked:])
            acked = len(received)
            await wait_until(lambda: bool(bridge.buffer))
            received += bridge.take(1000)
        bodies = [m.payload for m in received]
        assert bodies == [f'{{"n": {i}}}'.encode() for i in range(1000)]  # all, once each, in order


class FakeSock:
    """A non-blocking socket that returns the given chunks, then would block."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def recv(self, n: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.pop(0)[:n]

    def close(self) -> None:
        self.chunks = []


def publish_packet(topic: str, mid: int, payload: bytes) -> bytes:
    """An MQTT 5 QoS 1 PUBLISH without properties."""
    body = len(topic).to_bytes(2, "big") + topic.encode() + mid.to_bytes(2, "big") + b"\x00" + payload
    length, varint = len(body), b""
    while True:
        byte, length = length & 0x7F, length >> 7
        varint += bytes([byte | (0x80 if length else 0)])
        if not length:
            return b"\x32" + varint + body


def test_read_publishes_cuts_packets_across_reads_and_leaves_others_to_paho() -> None:
    """PUBLISH packets split anywhere across socket reads come out whole, in order; a SUBACK stops the bulk
    read for paho; a full receive window (the sink says False) stops it with the rest kept buffered."""
    packets = [publish_packet(f"ioc/v1/flood/D{i}/telemetry", i + 1, b"x" * (i * 40)) for i in range(6)]
    stream = b"".join(packets[:3]) + b"\x90\x03\x00\x01\x01" + b"".join(packets[3:])  # SUBACK in between
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    client = FastClient(CallbackAPIVersion.VERSION2, client_id="bulk-test", protocol=mqtt.MQTTv5)
    client._sock = FakeSock(chunks)  # type: ignore[assignment]
    got: list[tuple[str, int]] = []
    room = [5]

    def sink(topic: str, payload: bytes, mid: int, qos: int) -> bool:
        got.append((topic, mid))
        assert payload == b"x" * ((mid - 1) * 40) and qos == 1
        room[0] -= 1
        return room[0] > 0

    client.publish_sink = sink
    assert client.read_publishes(100) == (3, True)  # the SUBACK is paho's
    assert bytes(client.read_buffer[:1]) == b"\x90"
    del client.read_buffer[:5]  # paho's loop_read would take it
    assert client.read_publishes(100) == (2, False)  # the window is full after 5
    assert client.read_publishes(100) == (1, False)  # and resumed: the last one, then the socket would block
    assert got == [(f"ioc/v1/flood/D{i}/telemetry", i + 1) for i in range(6)]
    assert client.bulk_publishes == 6 and not client.read_buffer


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"\x32", (0, 0)), (b"\x32\x02ab", (2, 4)), (b"\x32\x03ab", (0, 0)), (b"\x32\x80\x01" + b"a" * 128, (3, 131)),
     (b"\x32\xff\xff\xff\xff\x01", (-1, -1)), (b"\x32\x80", (0, 0))],
)  # fmt: skip
def test_fixed_header(data: bytes, expected: tuple[int, int]) -> None:
    """Body start and end of the first packet; incomplete and over-long lengths say so."""
    assert fixed_header(bytearray(data), 0) == expected


def test_buffered_reads_split_packets_exactly() -> None:
    """The buffered socket read serves paho's small reads from one large read, byte for byte."""
    client = FastClient(CallbackAPIVersion.VERSION2, client_id="buffer-test", protocol=mqtt.MQTTv5)
    client._sock = FakeSock([b"abcdefgh", b"ij"])  # type: ignore[assignment]
    assert client._sock_recv(1) == b"a"
    assert client._sock_recv(3) == b"bcd"
    assert client._sock_recv(10) == b"efgh"  # what is buffered, never more
    assert client._sock_recv(10) == b"ij"
    try:
        client._sock_recv(1)
    except BlockingIOError:
        pass
    else:
        raise AssertionError("an empty socket must raise BlockingIOError for paho")


@pytest.mark.parametrize(
    ("qos", "properties"),
    [
        (0, b""),
        (1, b""),
        (1, b"\x01\x01"),  # payload format indicator
        (1, b"\x26\x00\x01k\x00\x01v" * 20),  # user properties: a property length of two bytes
    ],
)
def test_parse_publish_agrees_with_paho(qos: int, properties: bytes) -> None:
    """The ingest's lean PUBLISH parser reads what paho's own decoder reads."""
    topic = "ioc/v1/flood/FL-ĐÔ-1/telemetry".encode()
    payload = b'{"ts": 1, "metrics": {"water_level_cm": 1.5}}'
    length = len(properties)
    varint = bytes([length]) if length < 128 else bytes([(length & 0x7F) | 0x80, length >> 7])
    body = len(topic).to_bytes(2, "big") + topic + ((4242).to_bytes(2, "big") if qos else b"") + varint
    body += properties + payload
    command = 0x30 | (qos << 1)
    theirs = paho_packet.decode_publish(command, bytearray(body), mqtt.MQTTv5)
    assert parse_publish(command, bytearray(body)) == (
        theirs.topic.decode(),
        theirs.mid if qos else 0,
        qos,
        theirs.payload,
    )


@pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x09abc", b"\x00\x01a\x00", b"\x00\x01a\x00\x01\x05"])
def test_parse_publish_refuses_truncated_packets(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_publish(0x32, bytearray(body))


async def test_the_fast_paths_are_taken(broker: Broker) -> None:
    """Each PUBLISH goes through the lean parser and a batch's PUBACKs through one queued write.

    paho's own path would deliver the same messages, only slower, so without this test a paho change
    (or a broken override) could drop the fast path with every other test still green.
    """
    loop = asyncio.get_running_loop()
    async with subscribed_bridge(broker, "fast") as (bridge, topic):
        client = bridge.client
        queued: list[list[int]] = []
        queue_pubacks = client.queue_pubacks
        client.queue_pubacks = lambda mids: (queued.append(list(mids)), queue_pubacks(mids))[-1]  # type: ignore[method-assign]
        await loop.run_in_executor(None, publish, broker, topic, 50)
        await wait_until(lambda: len(bridge.buffer) >= 50)
        assert client.fast_publishes == 50  # every PUBLISH parsed by parse_publish, none by paho's path
        assert client.bulk_publishes == 50  # and read in bulk by read_publishes, outside paho's packet reader
        received = bridge.take(100)
        bridge.ack(received)
        assert queued == [[m.mid for m in received]]  # one queued write for the batch
        await wait_until(lambda: not client.want_write())  # and written


def test_paho_check_refuses_another_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyproject pins paho to the tested minor version; another one is refused at start, with the reason."""
    check_paho(version=f"{TESTED_MINOR}.9")
    with pytest.raises(PahoIncompatible, match="constraints.txt"):
        check_paho(version="2.3.0")
    monkeypatch.setattr(paho.mqtt, "__version__", "2.3.0")
    with pytest.raises(PahoIncompatible):  # an IocError: `ioc ingest` prints it and exits 1
        FastClient(CallbackAPIVersion.VERSION2, client_id="paho-check", protocol=mqtt.MQTTv5)


def test_paho_check_refuses_a_changed_private() -> None:
    """A private renamed away or given other parameters is refused at start, naming it."""

    class Renamed(mqtt.Client):
        _handle_publish = None  # type: ignore[assignment]

    class Reshaped(mqtt.Client):
        def _packet_queue(self, command: int, packet: bytes, mid: int, qos: int, info: object, retain: bool) -> None:  # type: ignore[override]
            pass

    with pytest.raises(PahoIncompatible, match="_handle_publish"):
        check_paho(Renamed)

    with pytest.raises(PahoIncompatible, match="_packet_queue"):
        check_paho(Reshaped)

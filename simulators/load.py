"""Load mode: steady canonical telemetry at a fixed rate over a few connections, with a manifest of what
was sent and acknowledged.

paho spends about 100 µs of Python per QoS 1 message, which caps one process below 10,000 msg/s on a
small machine, so this module speaks the few MQTT 3.1.1 packets it needs (CONNECT, PUBLISH, PUBACK,
DISCONNECT) straight over asyncio streams and batches each 10 ms slice into one write."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulators.mqtt import BrokerAddress

logger = logging.getLogger(__name__)

SLICE_S = 0.01
MAX_INFLIGHT = 20_000
CONNACK_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 15.0


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str | None, password: str | None, keepalive: int = 60) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session."""
    flags = 0x02 | (0x80 if username else 0) | (0x40 if password else 0)
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _utf8(client_id)
    if username:
        body += _utf8(username)
    if password:
        body += _utf8(password)
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, qos: int, packet_id: int) -> bytes:
    """A PUBLISH at QoS 0 or 1 (``topic`` already length-prefixed UTF-8)."""
    body = topic + (struct.pack("!H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _remaining_length(len(body)) + body


@dataclass
class DeviceTally:
    """Per-device counts for the manifest."""

    count: int = 0
    last_seq: int = 0
    acked: int = 0


@dataclass
class LoadResult:
    """The manifest of a load run."""

    sent: int = 0
    acked: int = 0
    devices: dict[str, DeviceTally] = field(default_factory=dict)
    started: str = ""
    ended: str = ""
    rate_achieved: float = 0.0
    rate_target: float = 0.0
    qos: int = 1
    connections: int = 0
    errors: int = 0

    def manifest(self) -> dict[str, Any]:
        """``{"sent", "acked", "devices": {id: {"count", "last_seq", "acked"}}, "rate_achieved", ...}``."""
        return {
            "sent": self.sent,
            "acked": self.acked,
            "devices": {
                k: {"count": v.count, "last_seq": v.last_seq, "acked": v.acked}
                for k, v in self.devices.items()
            },
            "rate_achieved": round(self.rate_achieved, 1),
            "rate_target": self.rate_target,
            "qos": self.qos,
            "connections": self.connections,
            "errors": self.errors,
            "started": self.started,
            "ended": self.ended,
        }


class _Connection:
    """One raw MQTT connection: batched writes, PUBACKs read and matched by packet id."""

    def __init__(self, name: str, qos: int, tally: list[DeviceTally]) -> None:
        self.name = name
        self.qos = qos
        self._tally = tally
        self._next_id = 0
        self._inflight: dict[int, int] = {}
        self.acked = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self.error: str | None = None
        self._closing = False

    async def open(self, address: BrokerAddress) -> None:
        context = ssl.create_default_context() if address.tls else None
        self._reader, self._writer = await asyncio.open_connection(address.host, address.port, ssl=context)
        self._writer.write(connect_packet(self.name, address.username, address.password))
        head = await asyncio.wait_for(self._reader.readexactly(4), CONNACK_TIMEOUT_S)
        if head[0] != 0x20 or head[3] != 0:
            raise ConnectionError(f"broker refused {self.name}: CONNACK {head.hex()}")
        self._read_task = asyncio.create_task(self._read_acks())

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def add(self, topic: bytes, payload: bytes, device_index: int, out: list[bytes]) -> None:
        """Append one PUBLISH for device ``device_index`` to the slice's buffer."""
        packet_id = 0
        if self.qos:
            packet_id = self._next_id % 65535 + 1
            self._next_id = packet_id
            self._inflight[packet_id] = device_index
        out.append(publish_packet(topic, payload, self.qos, packet_id))

    def flush(self, out: list[bytes]) -> None:
        assert self._writer is not None
        if out:
            self._writer.write(b"".join(out))

    async def drain(self) -> None:
        assert self._writer is not None
        await self._writer.drain()

    async def _read_acks(self) -> None:
        assert self._reader is not None
        buffer = b""
        try:
            while True:
                chunk = await self._reader.read(65536)
                if not chunk:
                    if not self._closing:
                        self.error = self.error or "broker closed the connection"
                    self._drained.set()
                    return
                buffer += chunk
                usable = len(buffer) - len(buffer) % 4
                # PUBACKs are the only packets a publisher receives here: 0x40 0x02 id id.
                for offset in range(0, usable, 4):
                    if buffer[offset] != 0x40:
                        self.error = f"unexpected packet 0x{buffer[offset]:02x}"
                        continue
                    packet_id = (buffer[offset + 2] << 8) | buffer[offset + 3]
                    device_index = self._inflight.pop(packet_id, None)
                    if device_index is not None:
                        self.acked += 1
                        self._tally[device_index].acked += 1
                buffer = buffer[usable:]
                if not self._inflight:
                    self._drained.set()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.error = str(exc)
            self._drained.set()

    async def wait_acked(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while self._inflight and self.error is None and time.monotonic() < deadline:
            self._drained.clear()
            try:
                await asyncio.wait_for(self._drained.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            try:
                self._writer.write(b"\xe0\x00")
                await self._writer.drain()
                self._writer.close()
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._read_task is not None:
            self._read_task.cancel()
            try:
                await self._read_task
            except asyncio.CancelledError:
                pass


def _iso_us(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Readings:
    """The load's devices, taken round-robin: their topics, tallies and random walk of water levels."""

    def __init__(self, devices: int, topic_prefix: str, seed: int) -> None:
        self.ids = [f"LOAD-{i:05d}" for i in range(1, devices + 1)]
        topics = [f"{topic_prefix}/flood/{d}/telemetry".encode() for d in self.ids]
        self.topics = [len(t).to_bytes(2, "big") + t for t in topics]
        self.tally = [DeviceTally() for _ in self.ids]
        self.rng = random.Random(seed)
        self.levels = [self.rng.uniform(0, 20) for _ in self.ids]
        self.batteries = [self.rng.uniform(60, 100) for _ in self.ids]
        self.device = 0  # the device whose reading comes next
        self._last_ts = 0.0

    def take(self) -> tuple[int, bytes, bytes]:
        """The next device's next reading: its index, its topic (length-prefixed) and its canonical payload."""
        device, rng = self.device, self.rng
        now = time.time()
        # Strictly increasing timestamps: no two messages of one device share one.
        self._last_ts = now if now > self._last_ts else self._last_ts + 1e-6
        t = self.tally[device]
        t.count += 1
        t.last_seq += 1
        self.levels[device] = min(200.0, max(0.0, self.levels[device] + rng.uniform(-0.5, 0.5)))
        payload = (
            f'{{"ts":"{_iso_us(self._last_ts)}","seq":{t.last_seq},"metrics":{{"water_level_cm":'
            f'{self.levels[device]:.1f},"rainfall_mm_h":{rng.uniform(0, 5):.1f},"battery_pct":'
            f"{self.batteries[device]:.1f}}}}}"
        ).encode()
        self.device = (device + 1) % len(self.ids)
        return device, self.topics[device], payload


async def run_load(
    url: str,
    rate: float,
    devices: int,
    duration_s: float,
    qos: int = 1,
    connections: int = 4,
    seed: int = 0,
    topic_prefix: str = "ioc/v1",
    stop: asyncio.Event | None = None,
    on_tick: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Publish ``rate`` flood readings a second from devices ``LOAD-00001``... for ``duration_s`` seconds."""
    if rate <= 0 or devices <= 0 or connections <= 0 or duration_s <= 0:
        raise ValueError("--load, --devices, --connections and --duration must be positive")
    address = BrokerAddress.parse(url)
    readings = _Readings(devices, topic_prefix, seed)
    links = [_Connection(f"sim-load-{seed}-{i}", qos, readings.tally) for i in range(connections)]
    await asyncio.gather(*(link.open(address) for link in links))
    result = LoadResult(rate_target=rate, qos=qos, connections=connections)
    stop = stop or asyncio.Event()
    began = time.monotonic()
    result.started = _iso_us(time.time())
    sent = 0
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - began
            last_slice = elapsed >= duration_s
            due = min(int(rate * elapsed) + 1, int(rate * duration_s)) - sent
            if due > 0:
                sent += await _send(links, readings, due)
            result.sent = sent
            if on_tick is not None:
                result.acked = sum(link.acked for link in links)
                on_tick(result)
            if last_slice:
                break
            next_slice = began + (int((time.monotonic() - began) / SLICE_S) + 1) * SLICE_S
            await asyncio.sleep(max(0.0, next_slice - time.monotonic()))
        sending_s = time.monotonic() - began
        if qos:
            await asyncio.gather(*(link.wait_acked(DRAIN_TIMEOUT_S) for link in links))
    finally:
        await asyncio.gather(*(link.close() for link in links))
    result.sent = sent
    _settle_result(result, links, readings, sent / sending_s if sending_s > 0 else 0.0)
    return result


async def _send(links: list[_Connection], readings: _Readings, due: int) -> int:
    """Send up to ``due`` readings round-robin over the connections (fewer where a window is full)."""
    buffers: list[list[bytes]] = [[] for _ in links]
    sent = 0
    for _ in range(due):
        link_index = readings.device % len(links)
        if links[link_index].inflight >= MAX_INFLIGHT:
            break
        device, topic, payload = readings.take()
        links[link_index].add(topic, payload, device, buffers[link_index])
        sent += 1
    for link, out in zip(links, buffers, strict=True):
        link.flush(out)
    await asyncio.gather(*(link.drain() for link in links))
    return sent


def _settle_result(result: LoadResult, links: list[_Connection], readings: _Readings, rate_achieved: float) -> None:
    """Fill in the run's end: what was acked, the errors, the rate achieved and each device's tally."""
    qos = result.qos
    result.ended = _iso_us(time.time())
    result.acked = sum(link.acked for link in links) if qos else result.sent
    result.errors = sum(1 for link in links if link.error)
    result.rate_achieved = rate_achieved
    result.devices = {d: t for d, t in zip(readings.ids, readings.tally, strict=True) if t.count}
    if qos == 0:
        for t in result.devices.values():
            t.acked = t.count
    for link in links:
        if link.error:
            logger.warning("load connection %s: %s", link.name, link.error)


def write_manifest(result: LoadResult, path: str) -> None:
    """Write the manifest JSON."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result.manifest(), handle, indent=1)

"""A lean websocket client for load benchmarks: one asyncio protocol, no per-message Python overhead.

Two hundred clients of a full websocket library in one Python process spend more CPU than the server
they measure (about 200 µs per message here), and their backlog shows up as server latency. This
client stamps each message when its bytes arrive, keeps only the messages that contain a marker,
and leaves JSON parsing to after the run. It speaks just what the benchmark needs of RFC 6455:
the HTTP upgrade, unmasked server frames (text, continuation, ping, close) and masked client frames;
it offers no extensions, so the server sends uncompressed frames.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


class RawClient(asyncio.Protocol):
    """One connection; ``kept`` holds (arrival time, text) of every text message containing ``marker``
    (times from ``clock``: monotonic, or wall time to compare with the server's timestamps)."""

    def __init__(self, marker: bytes, clock: Callable[[], float] = time.monotonic) -> None:
        self.marker = marker
        self.clock = clock
        self.kept: list[tuple[float, bytes]] = []
        self.messages = 0
        self.buffer = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("connection lost before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = self.clock()
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(f"upgrade refused: {status.decode(errors='replace')}"))
                return
            self.upgraded.set_result(None)
        self._frames(now)

    def _frames(self, now: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, at = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, at = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < at + n:
                return
            payload = bytes(buf[at : at + n])
            del buf[: at + n]
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping: answer, or the server closes the connection
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.send(0x8, payload[:2])
                assert self.transport is not None
                self.transport.close()
            elif opcode in (0x1, 0x0):
                self._fragments.append(payload)
                if b0 & 0x80:
                    text = b"".join(self._fragments)
                    self._fragments = []
                    self.messages += 1
                    if self.marker in text:
                        self.kept.append((now, text))

    def send(self, opcode: int, payload: bytes) -> None:
        """Send one frame (0x1 text, 0x8 close, 0xA pong)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def close(self) -> None:
        """Close the connection (a close frame, then the socket)."""
        self.send(0x8, struct.pack("!H", 1000))
        if self.transport is not None:
            self.transport.close()


async def connect(
    url: str,
    headers: dict[str, str],
    marker: bytes,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> RawClient:
    """Open ``url`` (ws://host:port/path) with extra request headers; returns the upgraded client."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: RawClient(marker, clock), parts.hostname, parts.port or 80), timeout
    )
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    assert client.transport is not None
    client.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await asyncio.wait_for(client.upgraded, timeout)
    return client

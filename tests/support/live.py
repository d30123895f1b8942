"""Logging in, and websocket clients of the live server (one keeps channel states as a browser does).

The live socket wants what a browser sends: the session cookie and the page's Origin (the server's own).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from dashboards.api.deps import SESSION_COOKIE
from dashboards.delta import REMOVED, list_key

logger = logging.getLogger(__name__)


async def login(base: str, name: str, password: str, **client: Any) -> str:
    """Log ``name`` in through ``POST /api/v1/auth/login`` on ``base`` (http origin); returns the session token."""
    async with httpx.AsyncClient(base_url=base, timeout=30, **client) as http:
        resp = await http.post("/api/v1/auth/login", json={"name": name, "password": password})
    if resp.status_code != 200:
        raise PermissionError(f"login of {name!r} failed: {resp.status_code} {resp.text[:200]}")
    return resp.cookies[SESSION_COOKIE]


def http_origin(url: str) -> str:
    """The http(s) origin of an http(s) or ws(s) URL: what a page on that server sends as ``Origin``."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def session_headers(token: str) -> dict[str, str]:
    """The Cookie header of a session."""
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


def apply(state: Any, delta: Any, name: str = "") -> Any:
    """The state after ``delta`` (what a client does with each delta message)."""
    if isinstance(state, dict) and isinstance(delta, dict):
        out = dict(state)
        for k, v in delta.items():
            out[k] = apply(state[k], v, k) if k in state else v
        return out
    if isinstance(state, list) and isinstance(delta, list):
        key = list_key(name, state, delta)
        if key is None:
            return delta
        items = {i[key]: i for i in state}
        for item in delta:
            k = item[key]
            if item.get(REMOVED):
                items.pop(k, None)
            elif k in items:
                items[k] = apply(items[k], item)
            else:
                items[k] = item
        return list(items.values())
    return delta


class LiveClient:
    """Connects to ``/ws/v1/live`` with a session, applies snapshots and deltas per channel, records every message."""

    def __init__(self, url: str, token: str, origin: str | None = None) -> None:
        self.url = url
        self.token = token
        self.origin = origin or http_origin(url)
        self.states: dict[str, Any] = {}
        self.messages: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> LiveClient:
        self.ws = await connect(
            self.url,
            max_size=16 * 1024 * 1024,
            open_timeout=10,
            close_timeout=1,
            origin=self.origin,  # type: ignore[arg-type]
            additional_headers=session_headers(self.token),
        )
        self._task = asyncio.create_task(self._reader())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()

    async def send(self, doc: dict[str, Any]) -> None:
        """Send one JSON message."""
        assert self.ws is not None
        await self.ws.send(json.dumps(doc))

    async def subscribe(self, *channels: str) -> None:
        """Subscribe to ``channels``."""
        await self.send({"op": "subscribe", "channels": list(channels)})

    async def _reader(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            msg = json.loads(raw)
            self.messages.append(msg)
            self.received_at.append(time.monotonic())
            if msg["type"] == "snapshot":
                self.states[msg["channel"]] = msg["data"]
            elif msg["type"] == "delta":
                self.states[msg["channel"]] = apply(self.states.get(msg["channel"], {}), msg["data"])
            self._changed.set()

    async def wait_for(self, predicate: Callable[[LiveClient], Any], within: float = 10.0, what: str = "") -> Any:
        """Wait until ``predicate(self)`` is truthy and return its value; TimeoutError names ``what``."""
        deadline = time.monotonic() + within
        while True:
            try:
                value = predicate(self)
            except (KeyError, IndexError, TypeError):
                value = None
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {within:.0f} s waiting for {what or predicate}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


class StuckClient:
    """A raw websocket client that sends requests and never reads: the worst client a server can have.

    It speaks just enough of RFC 6455 over a blocking socket with a tiny receive buffer, so the
    server's writes back up after a few kilobytes while our requests keep arriving.
    """

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.token = token
        self.origin = http_origin(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.sock: socket.socket | None = None

    def __enter__(self) -> StuckClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        sock.settimeout(10)
        sock.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {self.origin}\r\nCookie: {SESSION_COOKIE}={self.token}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionError("server closed during the websocket handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:80]!r}")
        self.sock = sock
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sock is not None:
            self.sock.close()

    def send(self, doc: dict[str, Any]) -> None:
        """Send one JSON text frame (masked, as clients must)."""
        assert self.sock is not None
        data = json.dumps(doc).encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (
            bytes([0x80 | n])
            if n < 126
            else bytes([0x80 | 126]) + struct.pack("!H", n)
            if n < 65536
            else bytes([0x80 | 127]) + struct.pack("!Q", n)
        )
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


async def raw_ws_handshake(
    base: str, path: str, *, host: str | None = None, origin: str | None = None, cookie: str = ""
) -> tuple[str, dict[str, str], bytes]:
    """Send a websocket upgrade by hand (any Host and Origin); returns (status line, headers, first bytes after)."""
    address, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(address, int(port))
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host or f'{address}:{port}'}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin or base}\r\nCookie: {auth_cookie(cookie)}\r\n\r\n".encode()
        )
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
        status, *lines = head.strip().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        body = await asyncio.wait_for(reader.read(int(headers.get("content-length", "0")) or 65536), 5)
        return status, headers, body
    finally:
        writer.close()


def auth_cookie(token: str) -> str:
    """The Cookie header value of a session token (empty without one)."""
    return session_headers(token)["Cookie"] if token else ""


async def live_socket(
    base: str, token: str | None, origin: str | None, within: float = 5.0
) -> tuple[int | None, list[str]]:
    """Open the live socket, subscribe, read until it closes; returns (close code or None if open, frames)."""
    url = base.replace("http://", "ws://") + "/ws/v1/live"
    received: list[str] = []
    headers = session_headers(token) if token else {}
    async with connect(url, origin=origin, additional_headers=headers, open_timeout=10) as ws:  # type: ignore[arg-type]
        try:
            await ws.send('{"op": "subscribe", "channels": ["summary"]}')
            deadline = time.monotonic() + within
            while (left := deadline - time.monotonic()) > 0:
                received.append(str(await asyncio.wait_for(ws.recv(), left)))
        except ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else None), received
        except TimeoutError:
            pass
    return None, received

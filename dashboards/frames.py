"""Frames: a live message's websocket frame built once for every client, and one write per client and beat.

Through ASGI, every message to every client is framed by the websockets library and written with a
system call of its own; at 200 clients that write is most of the server's cost per client. A text
frame from a server is not masked (RFC 6455 5.1), so its bytes are the same for every client:
``Message.frame`` builds them once, and ``FrameWriter`` (uvicorn's websockets-sansio protocol with one
ASGI scope extension, ``EXTENSION``) lets the live route write all of a client's waiting frames in one
call. It declines (and the route uses the ASGI send) when the connection is not open, negotiated
compression (frames then differ per client), or has more unsent bytes than ``MAX_BUFFERED``: a slow
client then waits on uvicorn's flow control as before, and its outbox keeps only the newest state.

This leans on the sansio protocol's attributes (``conn``, ``transport``, ``handshake_complete``,
``close_sent``, ``disconnected``): pyproject pins the uvicorn versions that have them, and
tests/test_frames.py checks that a real server takes this path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

EXTENSION = "ioc.frames"
MAX_BUFFERED = 64 * 1024  # asyncio's default high-water mark: beyond it the ASGI send waits for the client

Write = Callable[[bytes], bool]


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented text frame (RFC 6455 5.2) around UTF-8 ``payload``."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


def frame_writer(scope: Mapping[str, Any]) -> Write | None:
    """The connection's frame writer, when the server runs ``FrameWriter`` (else None: use the ASGI send)."""
    extension = scope.get("extensions", {}).get(EXTENSION)
    return extension["write"] if extension else None


class FrameWriter(WebSocketsSansIOProtocol):
    """Uvicorn's websockets-sansio protocol that also offers ``write_frames`` to the application."""

    def handle_connect(self, event: Any) -> None:
        """Accept as uvicorn does, and put ``write_frames`` in the ASGI scope's extensions."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][EXTENSION] = {"write": self.write_frames}

    def write_frames(self, data: bytes) -> bool:
        """Write whole frames now; False (nothing written) when the ASGI send must be used instead."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.conn.state is not State.OPEN
            or self.conn.extensions  # permessage-deflate: each client's frames are compressed on their own
            or self.transport.is_closing()
            or self.transport.get_write_buffer_size() > MAX_BUFFERED
        ):
            return False
        self.transport.write(data)
        return True

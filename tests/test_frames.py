"""dashboards.frames: the shared text frame is what a websocket client reads, at every length encoding."""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from dashboards.frames import text_frame
from dashboards.subscriber import Message


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65_535, 65_536, 300_000])
def test_text_frames_parse_back(length: int) -> None:
    """7-bit, 16-bit and 64-bit lengths; two frames in one write come out as two messages."""
    payload = ("é" * (length // 2) + "a" * (length % 2)).encode()
    client = ClientProtocol(parse_uri("ws://ioc.invalid/"), state=State.OPEN, max_size=None)
    client.receive_data(text_frame(payload) + text_frame(b"{}"))
    events = [e for e in client.events_received() if isinstance(e, Frame)]
    assert [(e.opcode, e.fin, e.data) for e in events] == [(Opcode.TEXT, True, payload), (Opcode.TEXT, True, b"{}")]


def test_a_message_frames_its_json_once() -> None:
    message = Message("zone:q1", "delta", {"name": "Quận 1"}, "2026-01-01T00:00:00Z")
    assert message.frame() is message.frame()
    assert message.frame() == text_frame(message.text().encode())

"""Subscriber: one websocket client's channels and its bounded outbox (the newest message per channel).

The hub delivers each publish's messages to every subscriber at once. With a frame writer (the server
runs ``dashboards.frames``) and nothing waiting in the outbox, they are written to the client's socket
right there, in one write: no task wakes up per client and message. Otherwise (no writer, a client whose
socket is backed up, something queued before them) they go to the outbox, which the websocket route
drains; there an undelivered delta is merged with the next one, so a slow client always receives the
newest state and never an unbounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dashboards import metrics
from dashboards.delta import merge
from dashboards.encoding import dumps, iso
from dashboards.frames import Write, text_frame

MAX_CONTROL_MESSAGES = 64
DIRECT_WRITES = metrics.WS_WRITES.labels("direct")
DELTAS_SENT = metrics.WS_MESSAGES.labels("delta")


def now_iso() -> str:
    """The current time as ISO UTC."""
    return iso(datetime.now(UTC)) or ""


@dataclass(eq=False)
class Message:
    """One server message; its JSON text and its websocket frame are built once however many clients receive it."""

    channel: str
    type: str
    data: dict[str, Any]
    ts: str = field(default_factory=now_iso)
    _text: str | None = None
    _frame: bytes | None = None

    def text(self) -> str:
        """The message as JSON text."""
        if self._text is None:
            self._text = dumps({"channel": self.channel, "type": self.type, "ts": self.ts, "data": self.data})
        return self._text

    def frame(self) -> bytes:
        """The message as a websocket text frame (the same bytes for every client)."""
        if self._frame is None:
            self._frame = text_frame(self.text().encode())
        return self._frame


class Subscriber:
    """One client's channels and outbox: at most one message per channel, plus a few control messages.

    ``write`` writes whole frames to the client's socket now, or returns False (see ``dashboards.frames``).
    """

    def __init__(self, write: Write | None = None) -> None:
        self._channels: set[str] = set()
        self._pending: dict[str, Message] = {}
        self._control: deque[Message] = deque(maxlen=MAX_CONTROL_MESSAGES)
        self._wake = asyncio.Event()
        self.write = write
        self.sending = False  # the route is sending taken messages one by one: later ones must wait their turn

    def channels(self) -> list[str]:
        """The channels this client watches."""
        return list(self._channels)

    def watches(self, channel: str) -> bool:
        """True when this client watches ``channel``."""
        return channel in self._channels

    def watch(self, channel: str, snapshot: Message) -> None:
        """Start watching ``channel``; its ``snapshot`` message replaces anything waiting for it."""
        self._channels.add(channel)
        self._pending[channel] = snapshot
        self._wake.set()

    def unwatch(self, channel: str) -> None:
        """Stop watching ``channel`` and drop what waits for it."""
        self._channels.discard(channel)
        self._pending.pop(channel, None)

    def offer(self, message: Message, state: dict[str, Any]) -> None:
        """Queue ``message``, merging it with an undelivered one of the same channel.

        ``state`` is the channel's full state once ``message`` is applied: a delta that meets an
        undelivered snapshot becomes a snapshot of it.
        """
        waiting = self._pending.get(message.channel)
        if waiting is not None:
            metrics.WS_DROPPED.inc()
        if waiting is not None and message.type == "delta":
            if waiting.type == "snapshot":
                message = Message(message.channel, "snapshot", state, message.ts)
            else:
                message = Message(message.channel, "delta", merge(waiting.data, message.data), message.ts)
        self._pending[message.channel] = message
        self._wake.set()

    def deliver(self, messages: list[Message], states: list[dict[str, Any]], frames: bytes) -> bool:
        """Write ``frames`` (``messages``' frames, one message per channel) to the socket now if nothing is queued
        before them, else offer each message (``states`` as for ``offer``); True when written."""
        if self.write is not None and not (self._pending or self._control or self.sending) and self.write(frames):
            return True
        for message, state in zip(messages, states, strict=True):
            self.offer(message, state)
        return False

    def say(self, message: Message) -> None:
        """Queue a control message (error, heartbeat, status); the oldest is dropped beyond a small bound."""
        self._control.append(message)
        self._wake.set()

    def take(self) -> list[Message]:
        """Everything waiting to be sent, control messages first."""
        out = list(self._control) + list(self._pending.values())
        self._control.clear()
        self._pending.clear()
        self._wake.clear()
        return out

    async def wait(self, within: float) -> None:
        """Return when something is waiting to be taken, or after ``within`` seconds."""
        if self._wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, within)):  # no task per wait, unlike wait_for
                await self._wake.wait()


Outgoing = dict[Subscriber, tuple[list[Message], list[dict[str, Any]]]]  # per client: messages, channel states


def deliver(out: Outgoing) -> None:
    """Hand each client its messages of one publish: written at once where it can be (``Subscriber.deliver``).

    Clients watching the same channels share one buffer of frames, joined once.
    """
    joined: dict[tuple[Message, ...], bytes] = {}
    written = sent = 0
    for sub, (messages, states) in out.items():
        key = tuple(messages)
        frames = joined.get(key)
        if frames is None:
            frames = joined[key] = b"".join(m.frame() for m in messages)
        if sub.deliver(messages, states, frames):
            written += 1
            sent += len(messages)
    if written:
        DIRECT_WRITES.inc(written)
        DELTAS_SENT.inc(sent)

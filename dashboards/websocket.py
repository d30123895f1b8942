"""Websocket: the route ``/ws/v1/live``, where a client subscribes to channels and gets a snapshot, then deltas.

Only a viewer or above with an allowed Origin gets in (``websocket_guard``). Each connection has two
tasks: the receiver handles ``subscribe`` / ``unsubscribe`` / ``ping`` (through the hub); the sender
drains the subscriber's outbox and sends heartbeats, re-checking the session at each one. A client that stops
reading only blocks its own sender, while its outbox keeps just the newest state.

While the database is away an open socket stays open (its session was confirmed shortly before, see
``dashboards.availability``) and gets a ``status`` message; a socket whose session cannot be checked
is closed with 1013 (try again later), and the page reconnects by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from dashboards import metrics
from dashboards.availability import DatabaseUnavailable
from dashboards.frames import frame_writer
from dashboards.hub import Hub
from dashboards.security import WS_POLICY_VIOLATION, websocket_guard, websocket_user
from dashboards.subscriber import Message, Subscriber

logger = logging.getLogger(__name__)

router = APIRouter()
MAX_FRAME_CHARS = 64 * 1024
WS_TRY_AGAIN_LATER = 1013


def _error(code: str, message: str, channel: str = "") -> Message:
    return Message(channel, "error", {"code": code, "message": message})


def handle(hub: Hub, sub: Subscriber, text: str) -> list[str] | None:
    """Interpret one client frame: the channels to subscribe to (None when nothing to await)."""
    if len(text) > MAX_FRAME_CHARS:
        sub.say(_error("bad_request", f"message longer than {MAX_FRAME_CHARS} characters"))
        return None
    try:
        doc: Any = json.loads(text)
    except ValueError:
        sub.say(_error("bad_json", "messages must be JSON objects"))
        return None
    op = doc.get("op") if isinstance(doc, dict) else None
    if op == "ping":
        sub.say(Message("", "heartbeat", {}))
        return None
    if op not in ("subscribe", "unsubscribe"):
        sub.say(_error("bad_op", f"unknown op {op!r}; use subscribe, unsubscribe or ping"))
        return None
    channels = doc.get("channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        sub.say(_error("bad_request", "channels must be a list of strings"))
        return None
    if op == "unsubscribe":
        hub.unsubscribe(sub, channels)
        return None
    return list(dict.fromkeys(channels))


async def _receive(websocket: WebSocket, hub: Hub, sub: Subscriber) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            sub.say(_error("bad_request", "send text frames"))
            continue
        channels = handle(hub, sub, text)
        if channels:
            try:
                await hub.subscribe(sub, channels)
            except TimeoutError:
                sub.say(_error("unavailable", "the live state is not loaded yet; try again"))


async def _send(websocket: WebSocket, sub: Subscriber, heartbeat_s: float) -> None:
    """Drain the outbox; at each heartbeat re-check the session, closing with 1008 once it has ended.

    The hub writes most deltas itself (``Subscriber.deliver``); what waits here (snapshots, control
    messages, a backed-up client's merged deltas) goes out in one write of shared frames when the server
    offers it (``dashboards.frames``), else message by message through the ASGI send.
    """
    write = sub.write
    next_beat = time.monotonic() + heartbeat_s
    while True:
        await sub.wait(next_beat - time.monotonic())
        messages = sub.take()
        if time.monotonic() >= next_beat:
            try:
                user = await websocket_user(websocket)
            except DatabaseUnavailable:  # away longer than the session's grace period
                await websocket.close(code=WS_TRY_AGAIN_LATER, reason="database unavailable")
                return
            if user is None:  # logged out, expired, disabled or demoted
                await websocket.close(code=WS_POLICY_VIOLATION)
                return
            messages.append(Message("", "heartbeat", {}))
            next_beat = time.monotonic() + heartbeat_s
        if not messages:
            continue
        if write is not None and write(b"".join(m.frame() for m in messages)):
            metrics.WS_WRITES.labels("frames").inc()
        else:
            sub.sending = True  # the hub queues what comes meanwhile, so it cannot overtake these
            try:
                for message in messages:
                    await websocket.send_text(message.text())
            finally:
                sub.sending = False
            metrics.WS_WRITES.labels("asgi").inc(len(messages))
        for message in messages:
            metrics.WS_MESSAGES.labels(message.type).inc()


@router.websocket("/ws/v1/live")
async def live(websocket: WebSocket) -> None:
    """Live channels over one websocket for viewers and up (see docs/api.md); refused sockets get 1008."""
    try:
        if await websocket_guard(websocket) is None:
            return
    except DatabaseUnavailable:
        await websocket.accept()
        await websocket.close(code=WS_TRY_AGAIN_LATER, reason="database unavailable")
        logger.info("websocket refused: the database is unavailable and the session is not known")
        return
    hub: Hub = websocket.app.state.hub
    heartbeat_s: float = websocket.app.state.settings.ws_heartbeat_s
    await websocket.accept()
    async with hub.connect(frame_writer(websocket.scope)) as sub:
        tasks = {
            asyncio.create_task(_receive(websocket, hub, sub), name="ws-receive"),
            asyncio.create_task(_send(websocket, sub, heartbeat_s), name="ws-send"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, WebSocketDisconnect | OSError | RuntimeError):
                    logger.error("websocket task failed", exc_info=exc)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

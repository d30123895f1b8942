"""The live hub: database notifications in, one coalesced delta per channel out to every subscriber.

``NOTIFY ioc_ingest`` / ``ioc_alerts`` -> pending changes -> refresh only what changed (at most every
REFRESH_MIN_S, and at once when a held channel is due) -> recompute each affected channel that has
subscribers, once -> diff against the channel's last state -> offer the delta to each subscriber's slot.

Coalescing is per channel: a channel sends at most one delta per ``ws_coalesce_ms``. A change to a
channel that has been quiet for that long goes out at once (leading edge); one that comes sooner is
held and sent, merged with whatever else changed, when the interval is up (trailing edge). So a
quiet channel is fast, a busy one is capped, and one busy channel never delays another.

A slot holds at most one message per channel: a slow client's undelivered delta is merged with the
next one, so it always receives the newest state and never an unbounded queue.

When the database is away the hub keeps its last state, tells every client (a ``status`` message:
"database unavailable since ...") and keeps retrying; its first successful refresh after the outage
is a full reload, and a second ``status`` message says the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from dashboards import metrics
from dashboards.availability import Availability, is_unavailable
from dashboards.delta import NOTHING, diff, merge
from dashboards.encoding import dumps, iso
from dashboards.views import LiveState
from ioc.db import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

ALERTS_CHANNEL = "ioc_alerts"
REGISTRY_CHANNEL = "ioc_registry"  # sent by ``ioc devices import``
WINDOW_REFRESH_S = 10.0  # "last hour" / "yesterday" figures move with the clock
FULL_RELOAD_S = 60.0  # catches registry edits and anything a lost notification hid
MAX_CHANNELS_PER_CLIENT = 500
MAX_CONTROL_MESSAGES = 64
SLOW_REFRESH_S = 1.0
TIMER_SLACK_S = 0.002
REFRESH_MIN_S = 0.02  # at most 50 database refreshes a second, however often the ingest commits
RETRY_S = 1.0  # after a failed refresh
LISTEN_BACKOFF_MAX_S = 2.0  # the LISTEN connection retries at least this often, so an outage ends within seconds

Notice = Callable[[str, dict[str, Any]], None]


def _set_event(event: asyncio.Event, *_: object) -> None:
    event.set()


def now_iso() -> str:
    """The current time as ISO UTC."""
    return iso(datetime.now(UTC)) or ""


@dataclass(eq=False)
class Message:
    """One server message; its JSON text is built once however many clients receive it."""

    channel: str
    type: str
    data: dict[str, Any]
    ts: str = field(default_factory=now_iso)
    _text: str | None = None

    def text(self) -> str:
        """The message as JSON text."""
        if self._text is None:
            self._text = dumps({"channel": self.channel, "type": self.type, "ts": self.ts, "data": self.data})
        return self._text


@dataclass
class Pending:
    """What changed since the last update."""

    full: bool = False
    windows: bool = False
    all_devices: bool = False
    devices: set[str] = field(default_factory=set)
    alerts: bool = False
    events: bool = False

    def __bool__(self) -> bool:
        """True when something is to be refreshed."""
        return self.full or self.windows or self.all_devices or bool(self.devices) or self.alerts or self.events


class Subscriber:
    """One websocket's subscriptions and its bounded outbox: the newest message per channel."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.channels: set[str] = set()
        self.pending: dict[str, Message] = {}
        self.control: deque[Message] = deque(maxlen=MAX_CONTROL_MESSAGES)
        self.wake = asyncio.Event()

    def offer(self, message: Message) -> None:
        """Queue ``message``, merging it with an undelivered one of the same channel."""
        waiting = self.pending.get(message.channel)
        if waiting is not None:
            metrics.WS_DROPPED.inc()
        if waiting is not None and message.type == "delta":
            if waiting.type == "snapshot":
                message = Message(message.channel, "snapshot", self.hub.states[message.channel], message.ts)
            else:
                message = Message(message.channel, "delta", merge(waiting.data, message.data), message.ts)
        self.pending[message.channel] = message
        self.wake.set()

    def say(self, message: Message) -> None:
        """Queue a control message (error, heartbeat); the oldest is dropped beyond a small bound."""
        self.control.append(message)
        self.wake.set()

    def take(self) -> list[Message]:
        """Everything waiting to be sent, control messages first."""
        out = list(self.control) + list(self.pending.values())
        self.control.clear()
        self.pending.clear()
        self.wake.clear()
        return out

    async def subscribe(self, channels: list[str]) -> None:
        """Subscribe to channels; each gets a snapshot, an unknown one an error message."""
        await self.hub.ready(0.0 if self.hub.availability.down else 30.0)
        for channel in channels:
            if channel in self.channels:
                self.offer(Message(channel, "snapshot", self.hub.states[channel]))
            elif len(self.channels) >= MAX_CHANNELS_PER_CLIENT:
                self.say(
                    Message(
                        channel,
                        "error",
                        {
                            "code": "too_many_channels",
                            "message": f"at most {MAX_CHANNELS_PER_CLIENT} channels",
                        },
                    )
                )
            elif not self.hub.live.channel_exists(channel):
                self.say(
                    Message(
                        channel,
                        "error",
                        {"code": "unknown_channel", "message": f"unknown channel {channel!r}"},
                    )
                )
            else:
                self.hub.attach(self, channel)

    def unsubscribe(self, channels: list[str]) -> None:
        """Stop receiving ``channels`` (unknown ones are ignored)."""
        for channel in channels:
            self.hub.detach(self, channel)


class Hub:
    """Listens to the database and serves channel states to subscribers (an async context manager)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        database_url: str,
        kinds: set[str],
        coalesce_ms: int,
        availability: Availability | None = None,
    ) -> None:
        self.pool = pool
        self.database_url = database_url
        self.availability = availability or Availability(timedelta(0))
        self.availability.listeners.append(self._availability_changed)
        self.live = LiveState(kinds)
        self.interval = coalesce_ms / 1000.0
        self.states: dict[str, dict[str, Any]] = {}
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.clients: set[Subscriber] = set()
        self.listeners: list[Notice] = []
        self._pending = Pending(full=True)
        self._last_sent: dict[str, float] = {}  # channel -> loop time of its last delta
        self._held: set[str] = set()  # channels with a change waiting for their interval to end
        self._flush_at: asyncio.TimerHandle | None = None
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None  # the refreshes' own connection
        self._wake = asyncio.Event()
        self._flush_due = asyncio.Event()  # a held channel may go: the pause between refreshes ends
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Hub:
        self._tasks = [
            asyncio.create_task(self._listen(), name="hub-listen"),
            asyncio.create_task(self._update_loop(), name="hub-update"),
            asyncio.create_task(self._clock(), name="hub-clock"),
        ]
        self._wake.set()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._flush_at is not None:
            self._flush_at.cancel()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self.pool.release(conn)

    async def ready(self, within: float = 30.0) -> None:
        """Wait until the live state has been loaded once (TimeoutError after ``within`` s)."""
        if self._ready.is_set():
            return
        async with asyncio.timeout(within):
            await self._ready.wait()

    def status(self) -> Message:
        """The ``status`` control message: is the database answering, and if not since when."""
        since = self.availability.down_since
        return Message("", "status", {"database": "unavailable" if since else "ok", "since": iso(since)})

    def _availability_changed(self, since: datetime | None) -> None:
        message = self.status()
        for sub in list(self.clients):
            sub.say(message)
        if since is not None:  # whoever noticed first (a request, a session check): the hub retries now
            self._pending.full = True
            self._wake.set()

    # ------------------------------------------------------------ subscribers

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Subscriber]:
        """A subscriber for one client; all its subscriptions end when the block exits."""
        sub = Subscriber(self)
        metrics.WS_CLIENTS.inc()
        self.clients.add(sub)
        if self.availability.down:
            sub.say(self.status())
        try:
            yield sub
        finally:
            self.clients.discard(sub)
            metrics.WS_CLIENTS.dec()
            for channel in list(sub.channels):
                self.detach(sub, channel)

    def attach(self, sub: Subscriber, channel: str) -> None:
        """Register ``sub`` on ``channel`` and give it the channel's current state as a snapshot."""
        if channel not in self.states:
            self.states[channel] = self.live.view(channel)
        self.subscribers.setdefault(channel, set()).add(sub)
        sub.channels.add(channel)
        sub.pending[channel] = Message(channel, "snapshot", self.states[channel])
        sub.wake.set()

    def detach(self, sub: Subscriber, channel: str) -> None:
        """Unregister ``sub`` from ``channel``; a channel nobody watches is no longer computed."""
        sub.channels.discard(channel)
        sub.pending.pop(channel, None)
        subs = self.subscribers.get(channel)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self.subscribers[channel]
            self.states.pop(channel, None)
            self._last_sent.pop(channel, None)
            self._held.discard(channel)

    def view(self, channel: str) -> dict[str, Any]:
        """The current state of a channel (for REST), from the last update."""
        return self.states.get(channel) or self.live.view(channel)

    # ------------------------------------------------------------ notifications

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        """asyncpg listener callback: record what changed and wake the update loop (no I/O here)."""
        metrics.NOTIFICATIONS.labels(channel).inc()
        try:
            doc = json.loads(payload) if channel != REGISTRY_CHANNEL else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        p = self._pending
        if channel == ALERTS_CHANNEL:
            p.alerts = True
        elif channel == REGISTRY_CHANNEL:
            p.full = True
        else:
            devices = doc.get("devices")
            # A notice that does not name its devices (another writer, an older ingest): reload them all.
            if isinstance(devices, list):
                before = len(p.devices)
                p.devices.update(str(d) for d in devices)
                metrics.LIVE_COALESCED.inc(before + len(devices) - len(p.devices))
            else:
                p.all_devices = True
            if doc.get("events"):
                p.events = True
        self._wake.set()
        for listener in self.listeners:
            try:
                listener(channel, doc)
            except Exception:  # one bad listener must not stop the hub
                logger.exception("notification listener failed")

    async def _listen(self) -> None:
        """Hold a LISTEN connection, reconnecting with backoff; after a gap, reload everything."""
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.database_url, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set_event, lost))
                await conn.add_listener(NOTIFY_CHANNEL, self._notified)
                await conn.add_listener(ALERTS_CHANNEL, self._notified)
                await conn.add_listener(REGISTRY_CHANNEL, self._notified)
                self._pending.full = True  # notifications may have been missed while disconnected
                self._wake.set()
                logger.info("live hub listening on %s and %s", NOTIFY_CHANNEL, ALERTS_CHANNEL)
                backoff = 0.5
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), 5.0)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=5)
                raise ConnectionError("listener connection closed")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                # A refresh now finds out whether the database itself is away (and says so to every client).
                self._pending.full = True
                self._wake.set()
                log = logger.debug if self.availability.down else logger.warning
                log("live hub lost its LISTEN connection (%s); reconnecting in %.1f s", exc, backoff)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, LISTEN_BACKOFF_MAX_S)

    async def _clock(self) -> None:
        """Mark clock-driven figures stale every few seconds, and everything once a minute."""
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(WINDOW_REFRESH_S)
            if time.monotonic() - last_full >= FULL_RELOAD_S:
                self._pending.full = True
                last_full = time.monotonic()
            self._pending.windows = True
            self._wake.set()

    # ------------------------------------------------------------ updates

    async def _update_loop(self) -> None:
        """Apply pending changes as they come, at most once per REFRESH_MIN_S, and send held channels.

        A held channel's flush runs through here too: the refresh just before it picks up whatever was
        committed while the channel waited, so its delta is as fresh as possible when it may go.
        """
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._flush_due.clear()
            started = time.monotonic()
            pending, self._pending = self._pending, Pending()
            changed: set[str] = set()
            try:
                changed = await self._update(pending)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if is_unavailable(exc):
                    self.availability.failed(exc)  # logged once per outage, not once per retry
                else:
                    logger.warning("live update failed (%s); retrying with a full reload", exc)
                self._pending.full = True
                self._wake.set()
                self.publish(set())  # held channels still go out, with the state we have
                await asyncio.sleep(RETRY_S)
                continue
            finally:
                took = time.monotonic() - started
                if pending:
                    metrics.LIVE_REFRESH_SECONDS.observe(took)
                if took > SLOW_REFRESH_S:
                    logger.warning(
                        "slow live refresh",
                        extra={"seconds": round(took, 2), "full": pending.full, "devices": len(pending.devices)},
                    )
            if pending:  # the database answered
                self.availability.recovered()
            self.publish(changed)
            rest = min(REFRESH_MIN_S, self.interval) - (time.monotonic() - started)
            if rest > 0 and not self._flush_due.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_due.wait(), rest)

    async def _update(self, p: Pending) -> set[str]:
        """Refresh what ``p`` says changed; returns the affected channels."""
        changed: set[str] = set()
        if not p:
            return changed
        # One connection kept for refreshes: a pool hand-back resets the session, a round trip that
        # would come with every refresh (tens a second under load).
        if self._conn is None:
            self._conn = await self.pool.acquire()
        conn = self._conn
        try:
            if p.full:
                changed |= await self.live.load_all(conn)
            else:
                if p.all_devices or p.devices:
                    changed |= await self.live.refresh_devices(conn, None if p.all_devices else sorted(p.devices))
                if p.alerts:
                    changed |= await self.live.refresh_alerts(conn)
                if p.events:
                    changed |= await self.live.refresh_events(conn)
                if p.windows:
                    changed |= await self.live.refresh_windows(conn)
        except BaseException:
            self._conn = None
            await self.pool.release(conn)  # a broken connection is replaced by the pool
            raise
        self._ready.set()
        return changed

    def publish(self, changed: set[str]) -> None:
        """Recompute each changed channel that has subscribers, once, and offer the delta to each.

        A channel that sent a delta less than the coalescing interval ago is held until the interval
        is up (see the module docstring).
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        earliest: float | None = None
        for channel in (changed | self._held) & self.subscribers.keys():
            due = self._last_sent.get(channel, -self.interval) + self.interval
            if now < due - TIMER_SLACK_S:  # a timer may fire a hair early (float sums, a millisecond clock)
                self._held.add(channel)
                earliest = due if earliest is None else min(earliest, due)
                continue
            held = channel in self._held
            self._held.discard(channel)
            if not self.live.channel_exists(channel):
                continue
            new = self.live.view(channel)
            delta = diff(self.states[channel], new)
            if delta is NOTHING:
                continue
            self.states[channel] = new
            # A held channel keeps its beat (due, not now: the refresh before a flush takes a moment),
            # so a busy channel sends once per interval, not per interval + refresh. A quiet channel,
            # or one held far past its time (a stalled loop), starts a new beat now.
            self._last_sent[channel] = due if held and now - due < self.interval / 2 else now
            metrics.LIVE_UPDATES.labels(channel.partition(":")[0]).inc()
            message = Message(channel, "delta", self.live.show_resolved(channel, delta))
            for sub in list(self.subscribers[channel]):
                sub.offer(message)
        self._held &= self.subscribers.keys()
        if earliest is not None and (self._flush_at is None or self._flush_at.when() > earliest):
            if self._flush_at is not None:
                self._flush_at.cancel()
            self._flush_at = loop.call_at(earliest, self._flush_held)

    def _flush_held(self) -> None:
        """A held channel's interval is up: refresh now (without the usual pause) and send it."""
        self._flush_at = None
        self._flush_due.set()
        self._wake.set()

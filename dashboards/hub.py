"""The live hub: database notifications in, one coalesced delta per channel out to every subscriber.

``NOTIFY`` (``dashboards.listener``) -> ``changes.Pending`` -> ``LiveState.refresh`` (only what changed) ->
recompute each affected channel that has subscribers, once -> diff against the channel's last state ->
deliver the deltas (``subscriber.deliver``: written to each client's socket in the same pass, one write
per client, or queued in its outbox when the client is backed up).

Coalescing is per channel: a channel sends at most one delta per ``ws_coalesce_ms``. A change to a
channel that has been quiet for that long goes out at once (leading edge); one that comes sooner is
held and sent, merged with whatever else changed, on the first beat of a clock shared by all channels
(multiples of the interval) at least an interval after its last delta (trailing edge). So a quiet
channel is fast, a busy one is capped, one busy channel never delays another, and the busy channels a
client watches reach it together, in one write.

An outbox holds at most one message per channel: a slow client's undelivered delta is merged with
the next one, so it always receives the newest state and never an unbounded queue.

When the database is away the hub keeps its last state, tells every client (a ``status`` message:
"database unavailable since ...") and keeps retrying; its first successful refresh after the outage
is a full reload, and a second ``status`` message says the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dashboards import metrics
from dashboards.availability import Availability, is_unavailable
from dashboards.changes import Pending
from dashboards.delta import NOTHING, diff
from dashboards.encoding import iso
from dashboards.frames import Write
from dashboards.listener import listen
from dashboards.live_state import LiveState
from dashboards.subscriber import Message, Outgoing, Subscriber, deliver

logger = logging.getLogger(__name__)

WINDOW_REFRESH_S = 10.0  # "last hour" / "yesterday" figures move with the clock
FULL_RELOAD_S = 60.0  # catches registry edits and anything a lost notification hid
MAX_CHANNELS_PER_CLIENT = 500
SLOW_REFRESH_S = 1.0
TIMER_SLACK_S = 0.002
REFRESH_MIN_S = 0.02  # at most 50 database refreshes a second, however often the ingest commits
RETRY_S = 1.0  # after a failed refresh

# What a refresh may meet when the database goes away under it. InternalClientError is asyncpg's protocol
# state after the server dropped a connection mid-query ("cannot switch to state ...; another operation is
# in progress"): it once ended the update loop silently, and the wall never heard the database was back.
REFRESH_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError)

Notice = Callable[[str, dict[str, Any]], None]


def _error(channel: str, code: str, message: str) -> Message:
    return Message(channel, "error", {"code": code, "message": message})


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
        self._states: dict[str, dict[str, Any]] = {}  # channel -> the state its subscribers last got
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._clients: set[Subscriber] = set()
        self._listeners: list[Notice] = []
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
            asyncio.create_task(listen(self.database_url, self._notified, self._gap), name="hub-listen"),
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

    def on_notification(self, listener: Notice) -> None:
        """Call ``listener(channel, payload)`` for every database notification (no I/O in it)."""
        self._listeners.append(listener)

    def status(self) -> Message:
        """The ``status`` control message: is the database answering, and if not since when."""
        since = self.availability.down_since
        return Message("", "status", {"database": "unavailable" if since else "ok", "since": iso(since)})

    def _availability_changed(self, since: datetime | None) -> None:
        message = self.status()
        for sub in list(self._clients):
            sub.say(message)
        if since is not None:  # whoever noticed first (a request, a session check): the hub retries now
            self._pending.full = True
            self._wake.set()

    # ------------------------------------------------------------ subscribers

    @asynccontextmanager
    async def connect(self, write: Write | None = None) -> AsyncIterator[Subscriber]:
        """A subscriber for one client (``write``: its frame writer, if any); all its subscriptions end when the
        block exits."""
        sub = Subscriber(write)
        metrics.WS_CLIENTS.inc()
        self._clients.add(sub)
        if self.availability.down:
            sub.say(self.status())
        try:
            yield sub
        finally:
            self._clients.discard(sub)
            metrics.WS_CLIENTS.dec()
            self.unsubscribe(sub, sub.channels())

    async def subscribe(self, sub: Subscriber, channels: list[str]) -> None:
        """Subscribe ``sub`` to channels; each gets a snapshot, an unknown one an error message."""
        await self.ready(0.0 if self.availability.down else 30.0)
        for channel in channels:
            if sub.watches(channel):
                state = self._states[channel]
                sub.offer(Message(channel, "snapshot", state), state)
            elif len(sub.channels()) >= MAX_CHANNELS_PER_CLIENT:
                sub.say(_error(channel, "too_many_channels", f"at most {MAX_CHANNELS_PER_CLIENT} channels"))
            elif not self.live.channel_exists(channel):
                sub.say(_error(channel, "unknown_channel", f"unknown channel {channel!r}"))
            else:
                self._attach(sub, channel)

    def unsubscribe(self, sub: Subscriber, channels: list[str]) -> None:
        """Stop sending ``channels`` to ``sub`` (unknown ones are ignored)."""
        for channel in channels:
            self._detach(sub, channel)

    def _attach(self, sub: Subscriber, channel: str) -> None:
        """Register ``sub`` on ``channel`` and give it the channel's current state as a snapshot."""
        if channel not in self._states:
            self._states[channel] = self.live.view(channel)
        self._subscribers.setdefault(channel, set()).add(sub)
        sub.watch(channel, Message(channel, "snapshot", self._states[channel]))

    def _detach(self, sub: Subscriber, channel: str) -> None:
        """Unregister ``sub`` from ``channel``; a channel nobody watches is no longer computed."""
        sub.unwatch(channel)
        subs = self._subscribers.get(channel)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subscribers[channel]
            self._states.pop(channel, None)
            self._last_sent.pop(channel, None)
            self._held.discard(channel)

    def view(self, channel: str) -> dict[str, Any]:
        """The current state of a channel (for REST), from the last update."""
        return self._states.get(channel) or self.live.view(channel)

    # ------------------------------------------------------------ notifications

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        """asyncpg listener callback: record what changed and wake the update loop (no I/O here)."""
        metrics.NOTIFICATIONS.labels(channel).inc()
        doc = self._pending.note(channel, payload)
        self._wake.set()
        for listener in self._listeners:
            try:
                listener(channel, doc)
            except Exception:  # one bad listener must not stop the hub
                logger.exception("notification listener failed")

    def _gap(self, exc: Exception | None, retry_s: float) -> None:
        """The LISTEN connection is new or lost: notifications may have been missed, so reload everything.

        When it was lost, a refresh now finds out whether the database itself is away (and says so to every client).
        """
        self._pending.full = True
        self._wake.set()
        if exc is not None:
            log = logger.debug if self.availability.down else logger.warning
            log("live hub lost its LISTEN connection (%s); reconnecting in %.1f s", exc, retry_s)

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
            except REFRESH_ERRORS as exc:
                if is_unavailable(exc):
                    self.availability.failed(exc)  # logged once per outage, not once per retry
                else:
                    logger.warning("live update failed (%s); retrying with a full reload", exc)
                self._pending.full = True
                self._wake.set()
                self.publish(set())  # held channels still go out, with the state we have
                await asyncio.sleep(RETRY_S)
                continue
            except Exception:  # a bug, not an outage: said loudly, and the hub keeps serving
                logger.exception("live update failed; retrying with a full reload")
                self._pending.full = True
                self._wake.set()
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
        if not p:
            return set()
        # One connection kept for refreshes: a pool hand-back resets the session, a round trip that
        # would come with every refresh (tens a second under load).
        if self._conn is None:
            self._conn = await self.pool.acquire()
        conn = self._conn
        try:
            changed = await self.live.refresh(conn, p)
        except BaseException:
            self._conn = None
            try:
                await self.pool.release(conn)  # a broken connection is replaced by the pool
            except Exception:  # its reset failed too: close it (the pool opens a new one when needed)
                conn.terminate()
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
        out: Outgoing = {}
        for channel in (changed | self._held) & self._subscribers.keys():
            last = self._last_sent.get(channel)
            due = now
            if last is not None and (channel in self._held or now < last + self.interval - TIMER_SLACK_S):
                # Busy: the next beat of the shared clock at least an interval after the last delta. Every busy
                # channel keeps the same beat, so a client's channels leave in one publish and reach it in one
                # write (dashboards.frames), not one wake and write per channel.
                due = self._beat(last + self.interval)
                if now < due - TIMER_SLACK_S:  # a timer may fire a hair early (float sums, a millisecond clock)
                    self._held.add(channel)
                    earliest = due if earliest is None else min(earliest, due)
                    continue
            held = channel in self._held
            self._held.discard(channel)
            if not self.live.channel_exists(channel):
                continue
            new = self.live.view(channel)
            delta = diff(self._states[channel], new)
            if delta is NOTHING:
                continue
            self._states[channel] = new
            # A held channel keeps its beat (due, not now: the refresh before a flush takes a moment),
            # so a busy channel sends once per interval, not per interval + refresh. A quiet channel,
            # or one held far past its time (a stalled loop), starts a new beat now.
            self._last_sent[channel] = due if held and now - due < self.interval / 2 else now
            metrics.LIVE_UPDATES.labels(channel.partition(":")[0]).inc()
            message = Message(channel, "delta", self.live.show_resolved(channel, delta))
            for sub in self._subscribers[channel]:
                if (waiting := out.get(sub)) is None:
                    out[sub] = ([message], [new])
                else:
                    waiting[0].append(message)
                    waiting[1].append(new)
        deliver(out)
        self._held &= self._subscribers.keys()
        self._flush_by(earliest)

    def _flush_by(self, at: float | None) -> None:
        """Make sure the held channels are flushed at ``at`` at the latest (loop time; None: no change)."""
        if at is not None and (self._flush_at is None or self._flush_at.when() > at):
            if self._flush_at is not None:
                self._flush_at.cancel()
            self._flush_at = asyncio.get_running_loop().call_at(at, self._flush_held)

    def _beat(self, at: float) -> float:
        """The first beat of the shared coalescing clock (multiples of the interval) at or after ``at``."""
        return math.ceil((at - TIMER_SLACK_S) / self.interval) * self.interval

    def _flush_held(self) -> None:
        """A held channel's interval is up: refresh now (without the usual pause) and send it."""
        self._flush_at = None
        self._flush_due.set()
        self._wake.set()

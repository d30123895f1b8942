"""The public responses' cache: the same request (path, query and base URL) asked again is answered from memory
while no commit notice of the ingest came since it was computed and it is younger than ``IOC_OPEN_CACHE_MS``;
the same request asked while it is being computed waits for that one computation. 200 clients asking "the latest
observation of every Datastream" then cost one query per commit, not 200.

It holds only finished responses of the public API, so it serves nothing the policy did not let through; while
the LISTEN connection is down (notices could be missed) it is bypassed. ETags let clients revalidate (304)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ioc.db import NOTIFY_CHANNEL, REGISTRY_CHANNEL
from opendata.notices import listen

MAX_ENTRIES = 256

logger = logging.getLogger(__name__)

Key = tuple[str, ...]


@dataclass(frozen=True)
class Reply:
    """A finished answer of the API: status, body, media type, extra headers and the rows it carries."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    rows: int = 0

    @property
    def etag(self) -> str:
        """A strong validator: a digest of the body."""
        return '"' + hashlib.blake2b(self.body, digest_size=16).hexdigest() + '"'


@dataclass
class _Entry:
    started: float
    answer: asyncio.Future[Reply]


class _Abandoned(Exception):
    """The computation a request waited for failed or was cancelled: it computes its own."""


class ResponseCache:
    """Replies by request key, valid until the next commit notice and for at most ``max_age_ms``."""

    def __init__(self, max_age_ms: int, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.max_age = max_age_ms / 1000
        self.max_entries = max_entries
        self.clock = clock
        self.listening = False
        self.generation = 0  # commit notices (and reconnections) seen
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()

    @property
    def active(self) -> bool:
        """True when replies may be shared: a max age is set and the commit notices are heard."""
        return self.max_age > 0 and self.listening

    def notice(self, _payload: str = "") -> None:
        """A commit of the ingest or a change of the registry: every reply computed so far may be out of date."""
        self.generation += 1
        self._entries.clear()

    def set_listening(self, up: bool) -> None:
        """The LISTEN connection came up (notices before it were missed) or went down (bypass until it is back)."""
        self.listening = up
        self.notice()

    async def answer(self, key: Key, compute: Callable[[], Awaitable[Reply]]) -> Reply:
        """The reply to ``key``: shared when fresh or being computed, else ``compute()``'s (kept when a 200)."""
        if not self.active:
            return await compute()
        entry = self._entries.get(key)
        if entry is not None and entry.answer.done() and self.clock() - entry.started > self.max_age:
            del self._entries[key]
            entry = None
        if entry is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            try:
                return await asyncio.shield(entry.answer)
            except _Abandoned:
                return await compute()
        self.misses += 1
        entry = _Entry(self.clock(), asyncio.get_running_loop().create_future())
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        try:
            reply = await compute()
        except BaseException:
            self._forget(key, entry)
            entry.answer.set_exception(_Abandoned())
            entry.answer.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        if reply.status != 200:
            self._forget(key, entry)  # shared with whoever waited for it, not kept
        entry.answer.set_result(reply)
        return reply

    def _forget(self, key: Key, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    def status(self) -> dict[str, int | bool]:
        """For health: whether it is in use, its size, notices seen, hits and misses."""
        return {"active": self.active, "entries": len(self._entries), "generation": self.generation,
                "hits": self.hits, "misses": self.misses}  # fmt: skip

    @asynccontextmanager
    async def listening_on(self, url: str) -> AsyncIterator[None]:
        """While open: hear the ingest's commit notices and the registry's on ``url`` (none with no max age)."""
        if self.max_age <= 0:
            yield
            return
        heard = listen(url, "ioc-open-cache", self.notice, self.set_listening, (NOTIFY_CHANNEL, REGISTRY_CHANNEL))
        task = asyncio.create_task(heard, name="open-cache")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

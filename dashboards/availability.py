"""Whether the database answers: the errors that mean it does not, since when, and the sessions that ride through.

During an outage the server keeps what it holds in memory: the live hub keeps its last state and tells
every websocket "database unavailable since ..."; a session validated shortly before stays valid for a
bounded grace period (``IOC_SESSION_OUTAGE_GRACE_MINUTES``); whatever needs the database answers 503
with Retry-After. The hub's next successful refresh ends the outage.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from ioc.accounts import User
from ioc.sessions import token_hash

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5
MAX_REMEMBERED_SESSIONS = 10_000
# What a driver says when the server is away (refused, reset, shutting down or starting up); not a bug in a query.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)

Listener = Callable[[datetime | None], None]


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (as opposed to a query's own error)."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True
    # asyncpg reports a connection lost under an operation as an InterfaceError "... connection is closed".
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


class DatabaseUnavailable(Exception):
    """The database did not answer; answered as 503 with Retry-After (REST) or close 1013 (websocket)."""

    def __init__(self, since: datetime | None) -> None:
        super().__init__("the database is unavailable; try again shortly")
        self.since = since


class Availability:
    """The database's state as this process sees it, and the sessions validated while it answered."""

    def __init__(self, grace: timedelta) -> None:
        self.grace = grace
        self.down_since: datetime | None = None
        self.listeners: list[Listener] = []
        self._sessions: OrderedDict[bytes, tuple[User, float]] = OrderedDict()  # token hash -> (user, checked at)

    @property
    def down(self) -> bool:
        """True during an outage."""
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        """Note that the database did not answer (the outage starts with the first such error)."""
        if self.down_since is not None:
            return
        self.down_since = datetime.now(UTC)
        logger.warning("database unavailable (%s: %s); serving the last state", type(exc).__name__, exc)
        self._tell()

    def recovered(self) -> None:
        """Note that the database answered again (called by the live hub after a successful refresh)."""
        if self.down_since is None:
            return
        lasted = (datetime.now(UTC) - self.down_since).total_seconds()
        self.down_since = None
        logger.warning("database available again after %.0f s", lasted)
        self._tell()

    def _tell(self) -> None:
        for listener in self.listeners:
            try:
                listener(self.down_since)
            except Exception:  # one bad listener must not stop the others
                logger.exception("availability listener failed")

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        """Record ``exc`` and return the error to raise in its place."""
        self.failed(exc)
        return DatabaseUnavailable(self.down_since)

    # ------------------------------------------------------------ sessions

    def remember(self, token: str, user: User) -> None:
        """A session the database has just confirmed (the oldest is forgotten beyond a bound)."""
        key = token_hash(token)
        self._sessions[key] = (user, time.monotonic())
        self._sessions.move_to_end(key)
        while len(self._sessions) > MAX_REMEMBERED_SESSIONS:
            self._sessions.popitem(last=False)

    def forget(self, token: str | None) -> None:
        """A session the database no longer knows (or that was logged out)."""
        if token:
            self._sessions.pop(token_hash(token), None)

    def recall(self, token: str | None) -> User | None:
        """During an outage: the user of a session confirmed within the grace period, else None."""
        if not token or len(token) > 128:
            return None
        entry = self._sessions.get(token_hash(token))
        if entry is None or time.monotonic() - entry[1] > self.grace.total_seconds():
            return None
        return entry[0]

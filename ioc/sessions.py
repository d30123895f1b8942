"""Server-side sessions: logging in (password checked, guesses throttled), the user of a token, logging out.

A session is a random 256-bit token held by the browser in an HttpOnly cookie; the database keeps
only its SHA-256, so a leaked table does not let anyone in.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ioc import audit
from ioc.accounts import (
    MAX_PASSWORD,
    USER_NAME_RE,
    AuthError,
    LoginFailed,
    User,
    rehashed,
    set_password,
    user_from_row,
    verify_password,
)
from ioc.throttle import Counters, ThrottlePolicy, clear_pair, guard, record_failure, record_success

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives: ``idle`` since the last request, ``absolute`` since login.

    A display account's session (a wall that runs for days) lives ``display`` for both.
    """

    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)
    display: timedelta = timedelta(days=30)

    @classmethod
    def from_settings(cls, settings: Any) -> SessionPolicy:
        """From IOC_SESSION_IDLE_MINUTES, IOC_SESSION_ABSOLUTE_HOURS and IOC_SESSION_DISPLAY_DAYS."""
        return cls(
            timedelta(minutes=settings.session_idle_minutes),
            timedelta(hours=settings.session_absolute_hours),
            timedelta(days=settings.session_display_days),
        )


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login: the session token (for the cookie only), its user and its absolute expiry."""

    token: str
    user: User
    expires_at: datetime


def token_hash(token: str) -> bytes:
    """What the sessions table stores for a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


async def change_own_password(
    conn: asyncpg.Connection,
    name: str,
    current: str,
    new: str,
    *,
    source: str = "",
    throttle: ThrottlePolicy | None = None,
    refusals: audit.RefusalLog | None = None,
) -> None:
    """A user replaces their own password (needs the current one); other sessions end.

    A wrong current password is a failed guess like a failed login (same counters, same waits), so a
    stolen session cannot be used to guess the password it would need to take the account over.
    """
    throttle = throttle or ThrottlePolicy()
    counters = Counters.of(name, source)
    await guard(conn, counters, throttle, "user.passwd", name, source, refusals)
    row = await conn.fetchrow("SELECT password_hash FROM users WHERE name = $1 AND NOT disabled", name)
    if row is None or not verify_password(row["password_hash"], current[:MAX_PASSWORD]):
        delay = await record_failure(conn, counters, throttle)
        detail = {"reason": "wrong current password", "lockout_s": delay}
        await audit.record(conn, name, "user.passwd", name, "failure", source, detail)
        raise LoginFailed("the current password is wrong")
    if new == current:
        raise AuthError("the new password must differ from the current one")
    await set_password(conn, name, new, actor=name, source=source, must_change=False)
    await clear_pair(conn, counters)


async def login(
    conn: asyncpg.Connection,
    name: str,
    password: str,
    *,
    source: str,
    user_agent: str = "",
    sessions: SessionPolicy | None = None,
    throttle: ThrottlePolicy | None = None,
    refusals: audit.RefusalLog | None = None,
) -> Login:
    """Check a password and open a session; raises Throttled or LoginFailed, and audits every attempt."""
    sessions, throttle = sessions or SessionPolicy(), throttle or ThrottlePolicy()
    shown = name.strip().lower()[:64]
    counters = Counters.of(shown, source)
    await guard(conn, counters, throttle, "login", shown, source, refusals)
    row = (
        await conn.fetchrow(
            "SELECT name, role, must_change, disabled, display, password_hash FROM users WHERE name = $1", shown
        )
        if USER_NAME_RE.match(shown) and len(password) <= MAX_PASSWORD
        else None
    )
    ok = verify_password(row["password_hash"] if row else None, password[:MAX_PASSWORD])
    if not ok or row is None or row["disabled"]:
        reason = "disabled" if ok else "bad credentials"
        delay = await record_failure(conn, counters, throttle)
        await audit.record(conn, shown, "login", shown, "failure", source, {"reason": reason, "lockout_s": delay})
        raise LoginFailed("wrong user name or password")
    new_hash = rehashed(row["password_hash"], password)
    if new_hash is not None:
        await conn.execute("UPDATE users SET password_hash = $2 WHERE name = $1", shown, new_hash)
    token = secrets.token_urlsafe(32)
    async with conn.transaction():
        await record_success(conn, counters)
        expires_at: datetime = await conn.fetchval(
            "INSERT INTO sessions (token_hash, user_name, expires_at, source, user_agent) "
            "VALUES ($1, $2, now() + $3::interval, $4, $5) RETURNING expires_at",
            token_hash(token),
            shown,
            sessions.display if row["display"] else sessions.absolute,
            source[:200],
            user_agent[:300],
        )
        await conn.execute("UPDATE users SET last_login_at = now() WHERE name = $1", shown)
        # Expired sessions are removed here, on the rare path, rather than by a timer.
        await conn.execute(
            "DELETE FROM sessions s USING users u WHERE u.name = s.user_name AND (s.expires_at < now() "
            "OR s.last_seen_at < now() - CASE WHEN u.display THEN $2::interval ELSE $1::interval END)",
            sessions.idle,
            sessions.display,
        )
        await audit.record(conn, shown, "login", shown, "success", source)
    return Login(token, user_from_row(row), expires_at)


async def session_user(
    conn: asyncpg.Connection | asyncpg.Pool, token: str | None, sessions: SessionPolicy | None = None
) -> User | None:
    """The user of a live session token, or None (unknown, expired, idle too long, or user disabled)."""
    if not token or len(token) > 128:
        return None
    sessions = sessions or SessionPolicy()
    row = await conn.fetchrow(
        "SELECT u.name, u.role, u.must_change, u.disabled, u.display, "
        "s.last_seen_at < now() - interval '60 seconds' AS stale "
        "FROM sessions s JOIN users u ON u.name = s.user_name "
        "WHERE s.token_hash = $1 AND s.expires_at > now() "
        "AND s.last_seen_at > now() - CASE WHEN u.display THEN $3::interval ELSE $2::interval END "
        "AND NOT u.disabled",
        token_hash(token),
        sessions.idle,
        sessions.display,
    )
    if row is None:
        return None
    if row["stale"]:  # a write per minute per session, not per request
        await conn.execute("UPDATE sessions SET last_seen_at = now() WHERE token_hash = $1", token_hash(token))
    return user_from_row(row)


async def logout(conn: asyncpg.Connection, token: str | None, *, source: str = "") -> None:
    """End the session of ``token`` (nothing happens for an unknown token)."""
    if not token:
        return
    name = await conn.fetchval("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_name", token_hash(token))
    if name is not None:
        await audit.record(conn, name, "logout", name, "success", source)

"""People: users and roles, Argon2 password hashes, server-side sessions and login throttling.

A session is a random 256-bit token held by the browser in an HttpOnly cookie; the database keeps
only its SHA-256, so a leaked table does not let anyone in. Throttling state lives in the database
too, so every server process sees the same counters.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ioc import audit
from ioc.errors import IocError

logger = logging.getLogger(__name__)

ROLES = ("viewer", "operator", "admin")  # each role can do everything the ones before it can
DEMO_USERS = {"admin": "admin", "operator": "operator", "viewer": "viewer"}
USER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # Argon2 cost does not grow with length, but bodies should stay small

_hasher = PasswordHasher()
# Verified when the user does not exist, so "no such user" takes as long as "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(IocError):
    """A user operation was refused; the message is safe to show."""


class UserExists(AuthError):
    """A user of that name already exists."""


class NoSuchUser(AuthError):
    """No user has that name."""


class LoginFailed(AuthError):
    """Wrong name or password, or a disabled user (deliberately indistinguishable)."""


class Throttled(AuthError):
    """Too many wrong passwords from this address or for this account; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many wrong passwords: try again in {max(1, round(retry_after))} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class User:
    """Someone who can log in, with one role."""

    name: str
    role: str
    must_change: bool = False
    disabled: bool = False
    display: bool = False  # a wall display account: viewer only, long-lived sessions

    def can(self, role: str) -> bool:
        """True when this user's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)


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
class ThrottlePolicy:
    """How password guesses are slowed, at login and password change alike (docs/security.md, "Guessing").

    Three counters of failed guesses, each forgotten ``forget_after`` after its last failure:

    - the pair (address, account): after ``pair_threshold`` failures, waits of ``base_s`` doubling per
      further failure up to ``max_s``; only a success of that same pair clears it;
    - the address, over every account: after ``address_threshold`` failures, the same waits; no success
      clears it, so a guesser's own account cannot reset it;
    - the account, over every address: after ``account_threshold`` failures, waits doubling up to
      ``account_max_s`` only, and never for an address that logged into the account within ``known_for``,
      so strangers can slow new places for a while but never lock the person out of their console.
    """

    pair_threshold: int = 5
    address_threshold: int = 20
    account_threshold: int = 10
    base_s: float = 1.0
    max_s: float = 300.0
    account_max_s: float = 30.0
    forget_after: timedelta = timedelta(minutes=15)
    known_for: timedelta = timedelta(days=30)

    def delay(self, failures: int, threshold: int | None = None, cap: float | None = None) -> float:
        """Seconds of wait after ``failures`` failures on a counter (0 below its threshold)."""
        threshold = self.pair_threshold if threshold is None else threshold
        if failures < threshold:
            return 0.0
        return float(min(self.max_s if cap is None else cap, self.base_s * 2 ** min(failures - threshold, 30)))


@dataclass(frozen=True, slots=True)
class _Counters:
    """The login_throttle keys of one guess: who from where."""

    pair: str
    address: str
    account: str
    known: str  # present while the address logged into the account within known_for (last_failure_at = then)

    @classmethod
    def of(cls, name: str, source: str) -> _Counters:
        return cls(f"pair:{source}|{name}", f"addr:{source}", f"user:{name}", f"known:{source}|{name}")

    def limits(self, policy: ThrottlePolicy) -> list[tuple[str, int, float]]:
        return [
            (self.pair, policy.pair_threshold, policy.max_s),
            (self.address, policy.address_threshold, policy.max_s),
            (self.account, policy.account_threshold, policy.account_max_s),
        ]


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login: the session token (for the cookie only), its user and its absolute expiry."""

    token: str
    user: User
    expires_at: datetime


def normalise_name(name: str) -> str:
    """A user name in its one spelling (lower case); AuthError when it is not allowed."""
    name = name.strip().lower()
    if not USER_NAME_RE.match(name):
        raise AuthError("user names are 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    """``role`` when it is one of ROLES, else AuthError."""
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    return role


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (AuthError when its length is out of bounds)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return _hasher.hash(password)


def generate_password() -> str:
    """A random one-time password (about 120 bits), easy to type once."""
    return secrets.token_urlsafe(15)


def token_hash(token: str) -> bytes:
    """What the sessions table stores for a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _user(row: asyncpg.Record) -> User:
    return User(row["name"], row["role"], row["must_change"], row["disabled"], row["display"])


async def create_user(
    conn: asyncpg.Connection,
    name: str,
    role: str,
    password: str | None = None,
    *,
    actor: str = "system",
    source: str = "",
    display: bool = False,
) -> str:
    """Add a user; without ``password`` a one-time one is generated (must be changed) and returned.

    ``display`` makes a wall display account: viewer only, sessions of SessionPolicy.display.
    """
    name, role = normalise_name(name), check_role(role)
    if display and role != "viewer":
        raise AuthError("a display account is read-only: its role must be viewer")
    secret = password or generate_password()
    try:
        await conn.execute(
            "INSERT INTO users (name, role, password_hash, must_change, display) VALUES ($1, $2, $3, $4, $5)",
            name,
            role,
            hash_password(secret),
            password is None,
            display,
        )
    except asyncpg.UniqueViolationError as exc:
        await audit.record(conn, actor, "user.add", name, "failure", source, {"reason": "exists"})
        raise UserExists(f"user {name!r} already exists") from exc
    await audit.record(conn, actor, "user.add", name, "success", source, {"role": role, "display": display})
    return secret


async def set_password(
    conn: asyncpg.Connection,
    name: str,
    password: str | None = None,
    *,
    actor: str = "system",
    source: str = "",
    must_change: bool | None = None,
) -> str:
    """Set a user's password (generated when None, then it must be changed) and end their sessions."""
    name = normalise_name(name)
    secret = password or generate_password()
    async with conn.transaction():
        found = await conn.fetchval(
            "UPDATE users SET password_hash = $2, must_change = $3, password_changed_at = now() "
            "WHERE name = $1 RETURNING name",
            name,
            hash_password(secret),
            password is None if must_change is None else must_change,
        )
        if found is None:
            raise NoSuchUser(f"no user {name!r}")
        await conn.execute("DELETE FROM sessions WHERE user_name = $1", name)
        await audit.record(conn, actor, "user.passwd", name, "success", source)
    return secret


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
    counters = _Counters.of(name, source)
    await _guard(conn, counters, throttle, "user.passwd", name, source, refusals)
    row = await conn.fetchrow("SELECT password_hash FROM users WHERE name = $1 AND NOT disabled", name)
    if row is None or not _verify(row["password_hash"], current[:MAX_PASSWORD]):
        delay = await _record_failure(conn, counters, throttle)
        detail = {"reason": "wrong current password", "lockout_s": delay}
        await audit.record(conn, name, "user.passwd", name, "failure", source, detail)
        raise LoginFailed("the current password is wrong")
    if new == current:
        raise AuthError("the new password must differ from the current one")
    await set_password(conn, name, new, actor=name, source=source, must_change=False)
    await conn.execute("DELETE FROM login_throttle WHERE key = $1", counters.pair)


async def set_disabled(
    conn: asyncpg.Connection, name: str, disabled: bool = True, *, actor: str = "system", source: str = ""
) -> None:
    """Disable (or enable) a user; disabling ends every session of theirs at once."""
    name = normalise_name(name)
    async with conn.transaction():
        found = await conn.fetchval("UPDATE users SET disabled = $2 WHERE name = $1 RETURNING name", name, disabled)
        if found is None:
            raise NoSuchUser(f"no user {name!r}")
        if disabled:
            await conn.execute("DELETE FROM sessions WHERE user_name = $1", name)
        await audit.record(conn, actor, "user.disable" if disabled else "user.enable", name, "success", source)


async def list_users(conn: asyncpg.Connection | asyncpg.Pool) -> list[User]:
    """Every user, by name."""
    rows = await conn.fetch("SELECT name, role, must_change, disabled, display FROM users ORDER BY name")
    return [_user(r) for r in rows]


async def ensure_demo_users(conn: asyncpg.Connection) -> dict[str, str]:
    """Create the demo admin, operator and viewer if missing; returns the new users' one-time passwords."""
    created: dict[str, str] = {}
    for name, role in DEMO_USERS.items():
        if await conn.fetchval("SELECT 1 FROM users WHERE name = $1", name) is None:
            created[name] = await create_user(conn, name, role, actor="ioc up", source="local")
    return created


async def _throttle_wait(conn: asyncpg.Connection, counters: _Counters, policy: ThrottlePolicy) -> float:
    """Seconds until this pair may guess again (the account's wait is skipped for a known address)."""
    wait = await conn.fetchval(
        "SELECT extract(epoch FROM max(locked_until) - now()) FROM login_throttle "
        "WHERE locked_until > now() AND (key = ANY($1::text[]) OR (key = $2 AND NOT EXISTS ("
        "SELECT 1 FROM login_throttle WHERE key = $3 AND last_failure_at > now() - $4::interval)))",
        [counters.pair, counters.address],
        counters.account,
        counters.known,
        policy.known_for,
    )
    return float(wait or 0.0)


async def _record_failure(conn: asyncpg.Connection, counters: _Counters, policy: ThrottlePolicy) -> float:
    """Count a failure on each counter (forgetting old streaks) and return the longest wait it now imposes."""
    delay = 0.0
    for key, threshold, cap in counters.limits(policy):
        failures: int = await conn.fetchval(
            "INSERT INTO login_throttle AS t (key, failures, last_failure_at) VALUES ($1, 1, now()) "
            "ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN t.last_failure_at < now() - $2::interval "
            "THEN 1 ELSE t.failures + 1 END, last_failure_at = now() RETURNING failures",
            key,
            policy.forget_after,
        )
        seconds = policy.delay(failures, threshold, cap)
        if seconds:
            await conn.execute(
                "UPDATE login_throttle SET locked_until = now() + $2::interval WHERE key = $1",
                key,
                timedelta(seconds=seconds),
            )
        delay = max(delay, seconds)
    return delay


async def _record_success(conn: asyncpg.Connection, counters: _Counters) -> None:
    """Clear this pair's counter and remember the address as one the account logs in from."""
    await conn.execute("DELETE FROM login_throttle WHERE key = $1", counters.pair)
    await conn.execute(
        "INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ($1, 0, now()) "
        "ON CONFLICT (key) DO UPDATE SET last_failure_at = now()",
        counters.known,
    )


async def prune_throttle(conn: asyncpg.Connection | asyncpg.Pool, policy: ThrottlePolicy | None = None) -> int:
    """Delete counters that are forgotten and no longer lock anything, and addresses no longer known."""
    policy = policy or ThrottlePolicy()
    status: str = await conn.execute(
        "DELETE FROM login_throttle WHERE CASE WHEN key LIKE 'known:%' THEN last_failure_at < now() - $2::interval "
        "ELSE last_failure_at < now() - $1::interval AND coalesce(locked_until < now(), true) END",
        policy.forget_after,
        policy.known_for,
    )
    return int(status.rsplit(" ", 1)[-1])


async def _guard(
    conn: asyncpg.Connection,
    counters: _Counters,
    policy: ThrottlePolicy,
    action: str,
    name: str,
    source: str,
    refusals: audit.RefusalLog | None,
) -> None:
    """Raise Throttled (audited; through ``refusals`` when given, so a hammering client adds few rows)."""
    wait = await _throttle_wait(conn, counters, policy)
    if wait <= 0:
        return
    detail = {"retry_after_s": round(wait, 1)}
    if refusals is not None:
        await refusals.record(conn, name, action, name, "throttled", source, detail)
    else:
        await audit.record(conn, name, action, name, "throttled", source, detail)
    raise Throttled(wait)


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
    counters = _Counters.of(shown, source)
    await _guard(conn, counters, throttle, "login", shown, source, refusals)
    row = (
        await conn.fetchrow(
            "SELECT name, role, must_change, disabled, display, password_hash FROM users WHERE name = $1", shown
        )
        if USER_NAME_RE.match(shown) and len(password) <= MAX_PASSWORD
        else None
    )
    ok = _verify(row["password_hash"] if row else _DUMMY_HASH, password[:MAX_PASSWORD]) and row is not None
    if not ok or row is None or row["disabled"]:
        reason = "disabled" if ok else "bad credentials"
        delay = await _record_failure(conn, counters, throttle)
        await audit.record(conn, shown, "login", shown, "failure", source, {"reason": reason, "lockout_s": delay})
        raise LoginFailed("wrong user name or password")
    if _hasher.check_needs_rehash(row["password_hash"]):
        await conn.execute("UPDATE users SET password_hash = $2 WHERE name = $1", shown, _hasher.hash(password))
    token = secrets.token_urlsafe(32)
    async with conn.transaction():
        await _record_success(conn, counters)
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
    return Login(token, _user(row), expires_at)


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
    return _user(row)


async def logout(conn: asyncpg.Connection, token: str | None, *, source: str = "") -> None:
    """End the session of ``token`` (nothing happens for an unknown token)."""
    if not token:
        return
    name = await conn.fetchval("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_name", token_hash(token))
    if name is not None:
        await audit.record(conn, name, "logout", name, "success", source)

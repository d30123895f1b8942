"""People who can log in: users and roles, Argon2 password hashes, adding, changing and disabling users.

Logging in is ``ioc.sessions``; slowing password guesses is ``ioc.throttle``.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ioc import audit
from ioc.errors import IocError

logger = logging.getLogger(__name__)

# Each role can do everything the ones before it can. A supervisor is an operator who also reassigns anyone's
# incident, overrides required steps on any, and is who time-limit escalations are addressed to.
ROLES = ("viewer", "operator", "supervisor", "admin")
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


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the hash ``stored``; without one (no such user) as slow, and False."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def rehashed(stored: str, password: str) -> str | None:
    """A new hash of ``password`` when ``stored`` was made with older Argon2 parameters, else None."""
    return _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None


def user_from_row(row: asyncpg.Record) -> User:
    """The User of a row with the users table's name, role, must_change, disabled and display."""
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
    return [user_from_row(r) for r in rows]


async def ensure_demo_users(conn: asyncpg.Connection) -> dict[str, str]:
    """Create the demo admin, operator and viewer if missing; returns the new users' one-time passwords."""
    created: dict[str, str] = {}
    for name, role in DEMO_USERS.items():
        if await conn.fetchval("SELECT 1 FROM users WHERE name = $1", name) is None:
            created[name] = await create_user(conn, name, role, actor="ioc up", source="local")
    return created

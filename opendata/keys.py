"""API keys for businesses: a key raises the anonymous per-address limits to its own quotas (requests per minute,
rows per UTC day); use is metered per key and day.

A key is ``ioc_<id>_<secret>`` (32 random bytes of secret); only its SHA-256 is stored. A fast hash is enough:
the secret is random, not a password a person chose, so there is nothing to guess a dictionary from. The server
keeps the keys and today's use in memory, reloads the keys every ``REFRESH_S`` (a revoked key stops working within
that) and adds its counts to ``open_api_usage`` at the same pace.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from opendata.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

REFRESH_S = 5.0
HEADER = "X-API-Key"


@dataclass(frozen=True)
class ApiKey:
    """A key as the server knows it (never its secret)."""

    id: str
    name: str
    per_minute: int
    rows_per_day: int


def new_key() -> tuple[str, str]:
    """A fresh key: (its id, the whole key to hand to the business once)."""
    ident = secrets.token_hex(4)
    return ident, f"ioc_{ident}_{secrets.token_urlsafe(32)}"


def digest(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def seconds_to_midnight(now: datetime) -> float:
    """Seconds until the next UTC day, when the daily rows start again."""
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return (tomorrow - now).total_seconds()


class KeyStore:
    """The keys, their rate buckets and today's use; ``refresh`` syncs with the database."""

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}  # sha256 -> key
        self.buckets: dict[str, RateLimiter] = {}
        self.day: date = datetime.now(UTC).date()
        self.stored_rows: dict[str, int] = {}  # key id -> today's rows in the database when last read
        self.pending: dict[str, list[int]] = {}  # key id -> [requests, rows] not yet written

    def find(self, key: str) -> ApiKey | None:
        """The key, or None when it is unknown or revoked."""
        return self.keys.get(digest(key))

    def take(self, key: ApiKey, now: float | None = None) -> float:
        """0 when ``key`` may make a request now, else the seconds until it may."""
        bucket = self.buckets.get(key.id)
        if bucket is None or bucket.rate * 60 != key.per_minute:
            bucket = self.buckets[key.id] = RateLimiter(key.per_minute, max(1, key.per_minute // 2))
        return bucket.take(key.id, now)

    def rows_today(self, key: ApiKey) -> int:
        """Rows the key has been sent today (stored and not yet stored)."""
        self._roll()
        return self.stored_rows.get(key.id, 0) + self.pending.get(key.id, [0, 0])[1]

    def meter(self, key: ApiKey, rows: int) -> None:
        """Count one request of ``rows`` rows."""
        self._roll()
        counts = self.pending.setdefault(key.id, [0, 0])
        counts[0] += 1
        counts[1] += rows

    def _roll(self) -> None:
        today = datetime.now(UTC).date()
        if today != self.day:
            self.day = today
            self.stored_rows.clear()

    async def refresh(self, pool: asyncpg.Pool) -> None:
        """Write the pending counts, then reload the keys and today's stored use."""
        pending, self.pending = self.pending, {}
        day = self.day
        try:
            async with pool.acquire() as conn:
                if pending:
                    await conn.executemany(
                        "INSERT INTO open_api_usage (key_id, day, requests, rows) VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (key_id, day) DO UPDATE SET requests = open_api_usage.requests + "
                        "EXCLUDED.requests, rows = open_api_usage.rows + EXCLUDED.rows",
                        [(k, day, r, n) for k, (r, n) in pending.items()],
                    )
                rows = await conn.fetch(
                    "SELECT id, name, key_sha256, per_minute, rows_per_day FROM open_api_keys WHERE revoked_at IS NULL"
                )
                used = await conn.fetch("SELECT key_id, rows FROM open_api_usage WHERE day = $1", self.day)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            for k, (r, n) in pending.items():  # kept for the next try: nothing metered is lost
                counts = self.pending.setdefault(k, [0, 0])
                counts[0] += r
                counts[1] += n
            logger.warning("open data keys: cannot sync with the database: %s", exc)
            return
        self.keys = {r["key_sha256"]: ApiKey(r["id"], r["name"], r["per_minute"], r["rows_per_day"]) for r in rows}
        self.stored_rows = {r["key_id"]: int(r["rows"]) for r in used}


async def add_key(conn: asyncpg.Connection, name: str, per_minute: int, rows_per_day: int, actor: str) -> str:
    """Store a new key for ``name``; returns the whole key (shown once, never stored)."""
    ident, key = new_key()
    await conn.execute(
        "INSERT INTO open_api_keys (id, name, key_sha256, per_minute, rows_per_day, created_by) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        ident, name, digest(key), per_minute, rows_per_day, actor,
    )  # fmt: skip
    return key


async def revoke_key(conn: asyncpg.Connection, ident: str) -> bool:
    """Revoke the key ``ident``; False when there is no such active key."""
    done = await conn.execute("UPDATE open_api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", ident)
    return bool(done.endswith(" 1"))


async def list_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every key with its quotas and today's use."""
    return list(
        await conn.fetch(
            "SELECT k.id, k.name, k.per_minute, k.rows_per_day, k.created_at, k.revoked_at, "
            "coalesce(u.requests, 0) AS requests_today, coalesce(u.rows, 0) AS rows_today "
            "FROM open_api_keys k LEFT JOIN open_api_usage u "
            "ON u.key_id = k.id AND u.day = (now() AT TIME ZONE 'UTC')::date "
            "ORDER BY k.created_at, k.id"
        )
    )

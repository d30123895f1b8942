"""Slowing password guesses: three counters of failed guesses in the database, shared by every server process.

Login and password change alike count here (docs/security.md, "Guessing").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from ioc import audit
from ioc.accounts import AuthError

logger = logging.getLogger(__name__)


class Throttled(AuthError):
    """Too many wrong passwords from this address or for this account; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many wrong passwords: try again in {max(1, round(retry_after))} s")
        self.retry_after = retry_after


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
class Counters:
    """The login_throttle keys of one guess: who from where."""

    pair: str
    address: str
    account: str
    known: str  # present while the address logged into the account within known_for (last_failure_at = then)

    @classmethod
    def of(cls, name: str, source: str) -> Counters:
        """The counters of a guess at account ``name`` from address ``source``."""
        return cls(f"pair:{source}|{name}", f"addr:{source}", f"user:{name}", f"known:{source}|{name}")

    def limits(self, policy: ThrottlePolicy) -> list[tuple[str, int, float]]:
        """Each counting key with its threshold and longest wait under ``policy``."""
        return [
            (self.pair, policy.pair_threshold, policy.max_s),
            (self.address, policy.address_threshold, policy.max_s),
            (self.account, policy.account_threshold, policy.account_max_s),
        ]


async def wait_for(conn: asyncpg.Connection, counters: Counters, policy: ThrottlePolicy) -> float:
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


async def record_failure(conn: asyncpg.Connection, counters: Counters, policy: ThrottlePolicy) -> float:
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


async def clear_pair(conn: asyncpg.Connection, counters: Counters) -> None:
    """Forget this address's failures on this account (a success of that same pair)."""
    await conn.execute("DELETE FROM login_throttle WHERE key = $1", counters.pair)


async def record_success(conn: asyncpg.Connection, counters: Counters) -> None:
    """Clear this pair's counter and remember the address as one the account logs in from."""
    await clear_pair(conn, counters)
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


async def guard(
    conn: asyncpg.Connection,
    counters: Counters,
    policy: ThrottlePolicy,
    action: str,
    name: str,
    source: str,
    refusals: audit.RefusalLog | None,
) -> None:
    """Raise Throttled (audited; through ``refusals`` when given, so a hammering client adds few rows)."""
    wait = await wait_for(conn, counters, policy)
    if wait <= 0:
        return
    detail = {"retry_after_s": round(wait, 1)}
    await audit.record(conn, name, action, name, "throttled", source, detail, refusals=refusals)
    raise Throttled(wait)

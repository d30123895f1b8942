"""ioc.auth and ioc.audit on the real database: hashes, logins, throttling, sessions, audit rows."""

from __future__ import annotations

import argparse
import asyncio
import io
import time
import uuid
from datetime import timedelta

import asyncpg
import pytest
from argon2 import PasswordHasher

from ioc import accounts, audit, security_cli, sessions, throttle
from ioc.sessions import SessionPolicy
from ioc.settings import Settings
from ioc.throttle import ThrottlePolicy

PASSWORD = "correct horse battery"


def unique(prefix: str) -> str:
    """A user name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_passwords_are_argon2_and_rehashed(pool: asyncpg.Pool) -> None:
    name = unique("hash")
    async with pool.acquire() as conn:
        await accounts.create_user(conn, name, "viewer", PASSWORD)
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE name = $1", name)
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
        await conn.execute("UPDATE users SET password_hash = $2 WHERE name = $1", name, weak)
        await sessions.login(conn, name, PASSWORD, source="10.1.0.1")
        rehashed = await conn.fetchval("SELECT password_hash FROM users WHERE name = $1", name)
    assert rehashed != weak and not PasswordHasher().check_needs_rehash(rehashed)


async def test_login_success_and_failure_are_audited(pool: asyncpg.Pool) -> None:
    name = unique("login")
    async with pool.acquire() as conn:
        await accounts.create_user(conn, name, "operator", PASSWORD, actor="tester")
        with pytest.raises(accounts.LoginFailed):
            await sessions.login(conn, name, "wrong password!", source="10.1.0.2")
        with pytest.raises(accounts.LoginFailed):
            await sessions.login(conn, unique("nobody"), PASSWORD, source="10.1.0.2")
        result = await sessions.login(conn, name.upper(), PASSWORD, source="10.1.0.2", user_agent="pytest")
        assert result.user == accounts.User(name, "operator")
        assert len(result.token) >= 43  # 32 random bytes, url-safe base64
        assert await sessions.session_user(conn, result.token) == result.user
        stored = await conn.fetchval("SELECT token_hash FROM sessions WHERE user_name = $1", name)
        assert stored == sessions.token_hash(result.token) and result.token.encode() not in stored
        rows = await audit.recent(conn, target=name)
    assert [(r.action, r.outcome) for r in rows] == [
        ("login", "success"),
        ("login", "failure"),
        ("user.add", "success"),
    ]
    assert rows[0].source == "10.1.0.2" and rows[2].actor == "tester"


async def test_ten_bad_passwords_slow_further_attempts(pool: asyncpg.Pool) -> None:
    name = unique("brute")
    policy = ThrottlePolicy(base_s=0.05, max_s=5.0)
    waits: list[float] = []
    started = time.monotonic()
    async with pool.acquire() as conn:
        await accounts.create_user(conn, name, "viewer", PASSWORD)
        for _ in range(10):
            while True:
                try:
                    await sessions.login(conn, name, "not the password", source="10.1.0.3", throttle=policy)
                except throttle.Throttled as exc:
                    waits.append(exc.retry_after)
                    await asyncio.sleep(exc.retry_after)
                    continue
                except accounts.LoginFailed:
                    break
        elapsed = time.monotonic() - started
        # Locked now for this address: even the right password is refused until the wait ends.
        with pytest.raises(throttle.Throttled) as locked:
            await sessions.login(conn, name, PASSWORD, source="10.1.0.3", throttle=policy)
        assert locked.value.retry_after > 0.5
        throttled = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE target = $1 AND outcome = 'throttled'", name
        )
    assert len(waits) == 5, waits  # one wait after each of failures 5..9
    assert all(b > a * 1.5 for a, b in zip(waits, waits[1:], strict=False)), waits
    assert elapsed >= sum(policy.delay(n) for n in range(5, 10)) * 0.9
    assert throttled == 6


async def test_an_address_guessing_many_accounts_is_capped(pool: asyncpg.Pool) -> None:
    """Spraying one password over many accounts from one address stops at address_threshold failures."""
    policy = ThrottlePolicy(base_s=2.0)
    async with pool.acquire() as conn:
        for _ in range(policy.address_threshold):
            with pytest.raises(accounts.LoginFailed):
                await sessions.login(conn, unique("spray"), "whatever123", source="10.1.0.4", throttle=policy)
        name = unique("victim")
        await accounts.create_user(conn, name, "viewer", PASSWORD)
        with pytest.raises(throttle.Throttled):
            await sessions.login(conn, name, PASSWORD, source="10.1.0.4", throttle=policy)
        assert (await sessions.login(conn, name, PASSWORD, source="10.1.0.5", throttle=policy)).user.name == name


async def test_a_guessers_own_logins_do_not_reset_the_address_counter(pool: asyncpg.Pool) -> None:
    """Issue 11: an attacker logging into their own account between guesses reset the address's count."""
    policy = ThrottlePolicy(base_s=2.0)
    own, source = unique("attacker"), "10.1.0.10"
    victims = [unique("target") for _ in range(8)]
    async with pool.acquire() as conn:
        await accounts.create_user(conn, own, "viewer", PASSWORD)
        for victim in victims:
            await accounts.create_user(conn, victim, "viewer", PASSWORD)
        guesses = 0
        with pytest.raises(throttle.Throttled):
            for _ in range(100):
                victim = victims[guesses % len(victims)]
                with pytest.raises(accounts.LoginFailed):
                    await sessions.login(conn, victim, f"guess {guesses}", source=source, throttle=policy)
                guesses += 1
                if guesses % 4 == 0:
                    await sessions.login(conn, own, PASSWORD, source=source, throttle=policy)
    assert guesses == policy.address_threshold


async def test_strangers_cannot_lock_the_owner_out(pool: asyncpg.Pool) -> None:
    """Failures from many addresses slow the account only for addresses it never logged in from, briefly."""
    policy = ThrottlePolicy(base_s=0.2, account_max_s=1.0)
    name = unique("owner")
    async with pool.acquire() as conn:
        await accounts.create_user(conn, name, "operator", PASSWORD)
        await sessions.login(conn, name, PASSWORD, source="10.1.1.1", throttle=policy)  # the owner's console
        outcomes = []
        for i in range(40):  # 40 addresses, 3 guesses each: under every pair and address threshold
            for _ in range(3):
                with pytest.raises((accounts.LoginFailed, throttle.Throttled)) as refused:
                    await sessions.login(conn, name, "a wrong guess", source=f"10.1.2.{i}", throttle=policy)
                outcomes.append(refused.type)
        assert outcomes.count(throttle.Throttled) > 40, "the account slows strangers once it has 10 failures"
        # The owner at their console: not slowed at all by the strangers' failures.
        assert (await sessions.login(conn, name, PASSWORD, source="10.1.1.1", throttle=policy)).user.name == name
        while True:  # one more stranger's failure, so the account is being slowed right now
            try:
                await sessions.login(conn, name, "a wrong guess", source="10.1.2.200", throttle=policy)
            except throttle.Throttled as exc:
                await asyncio.sleep(exc.retry_after)
            except accounts.LoginFailed:
                break
        # From a new place: a wait of at most account_max_s, never a lock.
        with pytest.raises(throttle.Throttled) as slowed:
            await sessions.login(conn, name, PASSWORD, source="10.1.3.1", throttle=policy)
        assert 0 < slowed.value.retry_after <= policy.account_max_s
        await asyncio.sleep(slowed.value.retry_after + 0.05)
        assert (await sessions.login(conn, name, PASSWORD, source="10.1.3.1", throttle=policy)).user.name == name


async def test_wrong_current_passwords_are_throttled(pool: asyncpg.Pool) -> None:
    """Issue 11: the password change could be used to guess the current password without limit."""
    policy = ThrottlePolicy(base_s=0.5)
    name = unique("changer")
    async with pool.acquire() as conn:
        await accounts.create_user(conn, name, "viewer", PASSWORD)
        for i in range(policy.pair_threshold):
            with pytest.raises(accounts.LoginFailed):
                await sessions.change_own_password(
                    conn, name, f"guess {i} of it", "a brand new password", source="10.1.4.1", throttle=policy
                )
        with pytest.raises(throttle.Throttled):  # even the right one, until the wait ends
            await sessions.change_own_password(
                conn, name, PASSWORD, "a brand new password", source="10.1.4.1", throttle=policy
            )
        with pytest.raises(throttle.Throttled):  # and logins from there: a guess is a guess
            await sessions.login(conn, name, PASSWORD, source="10.1.4.1", throttle=policy)
        rows = await audit.recent(conn, target=name, action="user.passwd", limit=10)
    assert [r.outcome for r in rows] == ["throttled"] + ["failure"] * policy.pair_threshold


async def test_stale_counters_are_pruned(pool: asyncpg.Pool) -> None:
    old, locking, known = f"pair:10.1.5.1|{unique('old')}", f"addr:{unique('locking')}", f"known:x|{unique('k')}"
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO login_throttle (key, failures, last_failure_at, locked_until) VALUES "
            "($1, 3, now() - interval '20 minutes', NULL), "
            "($2, 30, now() - interval '20 minutes', now() + interval '1 minute'), "
            "($3, 0, now() - interval '31 days', NULL)",
            old,
            locking,
            known,
        )
        await throttle.prune_throttle(conn, ThrottlePolicy())
        left = await conn.fetch("SELECT key FROM login_throttle WHERE key = ANY($1::text[])", [old, locking, known])
    assert [r["key"] for r in left] == [locking]  # still locking something


async def test_sessions_expire_idle_and_absolute(pool: asyncpg.Pool) -> None:
    name = unique("expiry")
    async with pool.acquire() as conn:
        await accounts.create_user(conn, name, "viewer", PASSWORD)
        short = SessionPolicy(idle=timedelta(seconds=1), absolute=timedelta(hours=1))
        idle = await sessions.login(conn, name, PASSWORD, source="10.1.0.6", sessions=short)
        assert await sessions.session_user(conn, idle.token, short) is not None
        await asyncio.sleep(1.2)  # the thing under test: the idle limit (1 s) passes
        assert await sessions.session_user(conn, idle.token, short) is None
        absolute = await sessions.login(conn, name, PASSWORD, source="10.1.0.6")
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
            sessions.token_hash(absolute.token),
        )
        assert await sessions.session_user(conn, absolute.token) is None
        assert await sessions.session_user(conn, "forged-token") is None
        assert await sessions.session_user(conn, None) is None


async def test_display_accounts_stay_logged_in_for_days_and_only_view(pool: asyncpg.Pool) -> None:
    """The wall runs for days under a display account; people's sessions still end with their shift."""
    wall, person = unique("wall"), unique("shift")
    policy = SessionPolicy(idle=timedelta(seconds=1), absolute=timedelta(hours=12), display=timedelta(days=30))
    async with pool.acquire() as conn:
        with pytest.raises(accounts.AuthError, match="viewer"):
            await accounts.create_user(conn, unique("wall-op"), "operator", PASSWORD, display=True)
        await accounts.create_user(conn, wall, "viewer", PASSWORD, display=True)
        await accounts.create_user(conn, person, "viewer", PASSWORD)
        shown = await sessions.login(conn, wall, PASSWORD, source="10.1.0.7", sessions=policy)
        shift = await sessions.login(conn, person, PASSWORD, source="10.1.0.7", sessions=policy)
        now = await conn.fetchval("SELECT now()")
        assert timedelta(days=29, hours=23) < shown.expires_at - now <= timedelta(days=30)
        assert timedelta(hours=11, minutes=59) < shift.expires_at - now <= timedelta(hours=12)
        assert shown.user.display and not shift.user.display
        await asyncio.sleep(1.2)  # longer than a person's idle limit
        user = await sessions.session_user(conn, shown.token, policy)
        assert user is not None and user.name == wall and user.role == "viewer" and not user.can("operator")
        assert await sessions.session_user(conn, shift.token, policy) is None
        # Another login's clean-up removes idle people's sessions, never the display's.
        await sessions.login(conn, person, PASSWORD, source="10.1.0.7", sessions=policy)
        assert await sessions.session_user(conn, shown.token, policy) is not None
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE users SET role = 'operator' WHERE name = $1", wall)


async def test_disable_and_password_change_end_sessions(pool: asyncpg.Pool) -> None:
    name = unique("disable")
    async with pool.acquire() as conn:
        await accounts.create_user(conn, name, "operator", PASSWORD)
        first = await sessions.login(conn, name, PASSWORD, source="10.1.0.7")
        await accounts.set_password(conn, name, "another long password", actor="admin")
        assert await sessions.session_user(conn, first.token) is None
        second = await sessions.login(conn, name, "another long password", source="10.1.0.7")
        await accounts.set_disabled(conn, name, actor="admin", source="10.9.9.9")
        assert await sessions.session_user(conn, second.token) is None
        with pytest.raises(accounts.LoginFailed):
            await sessions.login(conn, name, "another long password", source="10.1.0.7")
        rows = await audit.recent(conn, target=name, limit=3)
    assert [(r.action, r.actor, r.outcome) for r in rows] == [
        ("login", name, "failure"),
        ("user.disable", "admin", "success"),
        ("login", name, "success"),
    ]
    assert rows[0].detail["reason"] == "disabled"


async def test_generated_passwords_must_be_changed(pool: asyncpg.Pool) -> None:
    name = unique("onetime")
    async with pool.acquire() as conn:
        one_time = await accounts.create_user(conn, name, "viewer")
        assert len(one_time) >= 20
        result = await sessions.login(conn, name, one_time, source="10.1.0.8")
        assert result.user.must_change
        with pytest.raises(accounts.LoginFailed):
            await sessions.change_own_password(conn, name, "not it at all", "a brand new password")
        await sessions.change_own_password(conn, name, one_time, "a brand new password")
        assert await sessions.session_user(conn, result.token) is None
        again = await sessions.login(conn, name, "a brand new password", source="10.1.0.8")
        assert not again.user.must_change
        with pytest.raises(accounts.AuthError):
            await accounts.create_user(conn, name, "viewer", PASSWORD)
        with pytest.raises(accounts.AuthError):
            await accounts.create_user(conn, "bad name\n", "viewer", PASSWORD)
        with pytest.raises(accounts.AuthError):
            await accounts.create_user(conn, unique("role"), "root", PASSWORD)
        with pytest.raises(accounts.AuthError):
            await accounts.create_user(conn, unique("short"), "viewer", "short")


async def test_demo_users_are_created_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await accounts.ensure_demo_users(conn)
        assert await accounts.ensure_demo_users(conn) == {}
        users = {u.name: u for u in await accounts.list_users(conn)}
    assert {users[n].role for n in ("admin", "operator", "viewer")} == {"admin", "operator", "viewer"}


async def test_audit_values_are_stored_raw_and_logged_safely(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    nasty = "x\n2026-01-01 INFO forged line\r\x1b[31m<script>alert(1)</script>\u202e\x00"
    with caplog.at_level("INFO", logger="ioc.audit"):
        entry_id = await audit.record(
            pool, nasty, "rule.change", nasty, "success", "10.1.0.9", {"note": nasty}
        )
    rows = await audit.recent(pool, before_id=entry_id + 1, limit=1)
    assert rows[0].id == entry_id
    assert rows[0].actor == nasty.replace("\x00", "\ufffd") and rows[0].detail["note"].startswith("x\n")
    line = next(r.getMessage() for r in caplog.records if r.name == "ioc.audit")
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u202e" not in line
    assert "\\u000a" in line
    assert audit.log_safe("a\tb c") == "a\\u0009b c"
    with pytest.raises(ValueError):
        await audit.record(pool, "a", "b", "c", "maybe")


def test_cli_users_add_passwd_disable_list(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser()
    security_cli.add_parsers(parser.add_subparsers(dest="command"))
    name = unique("cli")

    def run(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args, settings) == 0
        return capsys.readouterr().out

    one_time = run("users", "add", name, "--role", "operator").strip().splitlines()[-1]
    assert len(one_time) >= 20
    monkeypatch.setattr("sys.stdin", io.StringIO("chosen by the admin\n"))
    assert "changed" in run("users", "passwd", name, "--password-stdin")
    assert f"{name}\toperator\t" in run("users", "list")
    run("users", "disable", name)
    assert f"{name}\toperator\tdisabled" in run("users", "list")
    wall = unique("cli-wall")
    run("users", "add", wall, "--role", "viewer", "--display")
    assert f"{wall}\tviewer\tmust-change,display" in run("users", "list")
    lead = unique("cli-lead")
    run("users", "add", lead, "--role", "supervisor")  # between operator and admin
    assert f"{lead}\tsupervisor\tmust-change" in run("users", "list")


class FakeClock:
    """A monotonic clock the test moves by hand (the refusal log's windows)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_thousand_refusals_make_two_rows(pool: asyncpg.Pool) -> None:
    """Issue 11: every anonymous refusal wrote a row (289-401 rows/s from 8 clients)."""
    clock, source = FakeClock(), f"10.7.{uuid.uuid4().int % 250}.1"
    log = audit.RefusalLog(window_s=60.0, clock=clock)
    before = await pool.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    for _ in range(1000):
        await audit.record(pool, "", "GET /api/v1/zones", "", "denied", source, {"reason": "no session"}, refusals=log)
    rows = await pool.fetch("SELECT * FROM audit_log WHERE id > $1 AND source = $2 ORDER BY id", before, source)
    assert len(rows) == 1 and rows[0]["detail"] == {"reason": "no session"}  # the first, at once
    clock.now += 60.0  # the window closes: its repeats become one row
    assert await log.flush(pool) == 1
    rows = await pool.fetch("SELECT * FROM audit_log WHERE id > $1 AND source = $2 ORDER BY id", before, source)
    assert len(rows) == 2 and rows[1]["action"] == "GET /api/v1/zones" and rows[1]["outcome"] == "denied"
    assert rows[1]["detail"]["repeats"] == 999 and rows[1]["detail"]["reason"] == "no session"
    assert rows[1]["detail"]["first_at"] <= rows[1]["detail"]["last_at"]


async def test_refusal_rows_are_bounded_whatever_the_paths_and_sources(pool: asyncpg.Pool) -> None:
    clock, prefix = FakeClock(), f"10.8.{uuid.uuid4().int % 250}"
    log = audit.RefusalLog(window_s=60.0, per_source=5, max_keys=20, clock=clock)
    before = await pool.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    for i in range(300):  # one source, 300 different paths
        path, reason = f"GET /api/v1/devices/{i}", {"reason": "no session"}
        await audit.record(pool, "", path, "", "denied", f"{prefix}.1", reason, refusals=log)
    for i in range(200):  # 200 sources
        source, reason = f"{prefix}.{i + 2}", {"reason": "no session"}
        await audit.record(pool, "", "GET /api/v1/zones", "", "denied", source, reason, refusals=log)
    await log.flush(pool, now=True)
    rows = await pool.fetch(
        "SELECT * FROM audit_log WHERE id > $1 AND (source LIKE $2 || '.%' OR source = '*')", before, prefix
    )
    assert len(rows) <= 2 * (20 + 1), len(rows)
    counted = sum(r["detail"].get("repeats", 1) for r in rows)  # a first row is one; a summary, its repeats
    assert counted == 500  # nothing refused goes uncounted
    assert any(r["action"] == "*" and r["source"] == f"{prefix}.1" for r in rows)


async def test_old_audit_entries_are_pruned(pool: asyncpg.Pool) -> None:
    marker = unique("old-entry")
    old = await audit.record(pool, "tester", "retention.test", marker, "success")
    new = await audit.record(pool, "tester", "retention.test", marker, "success")
    await pool.execute("UPDATE audit_log SET time = now() - interval '366 days' WHERE id = $1", old)
    assert await audit.prune(pool, timedelta(days=365), batch=1) >= 1
    left = await pool.fetch("SELECT id FROM audit_log WHERE target = $1", marker)
    assert [r["id"] for r in left] == [new]


def test_a_supervisor_sits_between_operator_and_admin() -> None:
    lead = accounts.User("lead", "supervisor")
    assert lead.can("viewer") and lead.can("operator") and lead.can("supervisor") and not lead.can("admin")
    assert accounts.User("op", "operator").can("supervisor") is False
    assert accounts.User("boss", "admin").can("supervisor")

"""API keys and quotas: anonymous limits stay; a key raises them to its own rate and rows a day (429 with
Retry-After past either); an unknown or revoked key is a 401; keys are stored hashed; use is metered per day;
`ioc apikeys add|list|revoke` manage them."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from opendata.keys import KeyStore, seconds_to_midnight
from tests.opendata_fixtures import THING, open_data_fixture, start_server  # noqa: F401 (fixtures)
from tests.support.stack import until


def apikeys(app_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``ioc apikeys ...`` as an administrator runs it (the owner role)."""
    return subprocess.run([sys.executable, "-m", "ioc.cli", "apikeys", *args], env=app_env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def add(app_env: dict[str, str], name: str, *quotas: str) -> str:
    """A new key's secret, from the command's last line."""
    done = apikeys(app_env, "add", name, *quotas)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def strict(run_ioc, module_scratch_dir, open_data) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server allowing anonymous addresses 2 requests in a burst (then 1 a minute)."""
    env = {"IOC_OPEN_RATE_PER_MINUTE": "1", "IOC_OPEN_RATE_BURST": "2"}
    for base in start_server(run_ioc, module_scratch_dir("ioc-od-keys-"), **env):
        yield base + "/sta/v1.1"


async def test_a_key_raises_the_anonymous_limit(app_env: dict[str, str], strict: str) -> None:
    key = add(app_env, "Acme Logistics", "--per-minute", "600", "--rows-per-day", "1000")
    url = f"{strict}/Things('{THING}')"
    async with httpx.AsyncClient(timeout=30) as http:
        anonymous = [(await http.get(url)).status_code for _ in range(4)]
        # The server reloads keys every few seconds: the new one works within that.
        await until(lambda: _status(http, url, key, 200), timeout=20, what="the new key to be loaded")
        keyed = [(await http.get(url, headers={"X-API-Key": key})).status_code for _ in range(10)]
        wrong = await http.get(url, headers={"X-API-Key": key + "x"})
    assert anonymous[-1] == 429 and keyed == [200] * 10
    assert wrong.status_code == 401 and "unknown or revoked API key" in wrong.json()["message"]


async def test_per_key_rate_and_daily_rows(app_env: dict[str, str], strict: str, pool: asyncpg.Pool) -> None:
    slow = add(app_env, "Slow Co", "--per-minute", "2", "--rows-per-day", "1000000")  # a burst of 1
    small = add(app_env, "Small Co", "--per-minute", "600", "--rows-per-day", "3")
    async with httpx.AsyncClient(timeout=30) as http:
        await until(lambda: _status(http, f"{strict}/Things('{THING}')", small, 200), timeout=20, what="the keys")
        await until(lambda: _status(http, f"{strict}/Things('{THING}')", slow, 200), timeout=20, what="the keys")
        too_fast = await http.get(f"{strict}/Things('{THING}')", headers={"X-API-Key": slow})
        # Small Co has had 1 row; a page of 2 Datastreams brings it to 3, its daily rows.
        page = await http.get(f"{strict}/Things('{THING}')/Datastreams", headers={"X-API-Key": small})
        over = await http.get(f"{strict}/Things('{THING}')", headers={"X-API-Key": small})
    assert too_fast.status_code == 429 and int(too_fast.headers["Retry-After"]) >= 1
    assert "rate (2 requests a minute)" in too_fast.json()["message"]
    assert page.status_code == 200 and len(page.json()["value"]) == 2
    assert over.status_code == 429 and "3 rows a day are used up" in over.json()["message"]
    assert 1 <= int(over.headers["Retry-After"]) <= 86_400
    ident = small.split("_")[1]

    async def metered() -> bool:
        row = await pool.fetchrow("SELECT requests, rows FROM open_api_usage WHERE key_id = $1", ident)
        return row is not None and row["requests"] == 2 and row["rows"] == 3

    await until(metered, timeout=20, what="the use to be written")
    listed = apikeys(app_env, "list")
    line = next(row for row in listed.stdout.splitlines() if row.startswith(ident))
    assert line.split("\t")[1:4] == ["Small Co", "600", "3"] and line.split("\t")[-2:] == ["2", "3"]


async def test_keys_are_stored_hashed_and_revoked(app_env: dict[str, str], strict: str, pool: asyncpg.Pool) -> None:
    key = add(app_env, "Revoked Inc")
    ident = key.split("_")[1]
    row = await pool.fetchrow("SELECT * FROM open_api_keys WHERE id = $1", ident)
    assert row["key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(value) for value in row.values())
    url = f"{strict}/Things('{THING}')"
    async with httpx.AsyncClient(timeout=30) as http:
        await until(lambda: _status(http, url, key, 200), timeout=20, what="the key")
        done = apikeys(app_env, "revoke", ident)
        assert done.returncode == 0 and f"revoked {ident}" in done.stdout
        await until(lambda: _status(http, url, key, 401), timeout=20, what="the revocation")
    again = apikeys(app_env, "revoke", ident)
    assert again.returncode == 1 and "no active key" in again.stderr


def test_bad_quotas_are_refused(app_env: dict[str, str]) -> None:
    done = apikeys(app_env, "add", "Nobody", "--per-minute", "0")
    assert done.returncode == 2 and "must be at least 1 (got 0)" in done.stderr
    unnamed = apikeys(app_env, "add", " ")
    assert unnamed.returncode == 2 and "needs a name" in unnamed.stderr


def test_store_counts_rows_until_the_day_turns() -> None:
    from datetime import UTC, datetime

    from opendata.keys import ApiKey

    store = KeyStore()
    key = ApiKey("k1", "x", 60, 10)
    store.meter(key, 4)
    store.meter(key, 3)
    assert store.rows_today(key) == 7 and store.pending["k1"] == [2, 7]
    assert seconds_to_midnight(datetime(2026, 1, 1, 23, 59, 30, tzinfo=UTC)) == 30


async def _status(http: httpx.AsyncClient, url: str, key: str, status: int) -> bool:
    return (await http.get(url, headers={"X-API-Key": key})).status_code == status

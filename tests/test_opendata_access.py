"""Fair public access: the open data pool runs as the read-only role with a statement time-out, and each address
has a request rate (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from opendata.api import RateLimiter
from tests.opendata_fixtures import THING, open_data_fixture, start_server  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def strict(run_ioc, module_scratch_dir, open_data) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server allowing 5 requests in a burst and 0.2 s per statement."""
    env = {"IOC_OPEN_RATE_PER_MINUTE": "6", "IOC_OPEN_RATE_BURST": "5", "IOC_OPEN_STATEMENT_TIMEOUT_MS": "200"}
    for base in start_server(run_ioc, module_scratch_dir("ioc-od-strict-"), **env):
        yield base + "/sta/v1.1"


async def test_pool_is_the_read_only_role_and_slow_queries_are_cut(strict: str, pool: asyncpg.Pool) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{strict}/Things('{THING}')")).status_code == 200
        roles = await pool.fetch(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'ioc-open-data'"
        )
        assert [r["usename"] for r in roles] == ["ioc_read"]
    # A statement kept waiting (here on a lock an administrator holds) is cut at the time-out, not left running.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        async with httpx.AsyncClient(timeout=30) as http:
            slow = await http.get(f"{strict}/Things")
    assert slow.status_code == 503, slow.text
    assert slow.json()["message"] == "the query ran longer than 0.2 s: narrow it with $filter or a smaller $top"


async def test_each_address_has_a_rate_and_gets_retry_after(strict: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        codes = [(await http.get(f"{strict}/Things('{THING}')")).status_code for _ in range(8)]
        refused = await http.get(f"{strict}/Things")
    assert codes.count(429) >= 2 and codes[0] in {200, 429}
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["message"] == "too many requests from this address"


def test_rate_limiter_refills_and_forgets_full_buckets() -> None:
    limiter = RateLimiter(per_minute=60, burst=2, max_clients=2)
    assert limiter.take("a", 0.0) == 0 and limiter.take("a", 0.0) == 0
    assert limiter.take("a", 0.0) == pytest.approx(1.0)  # one token a second
    assert limiter.take("a", 1.0) == 0
    assert limiter.take("b", 1.0) == 0
    assert limiter.take("c", 100.0) == 0 and "a" not in limiter.buckets  # refilled buckets are dropped

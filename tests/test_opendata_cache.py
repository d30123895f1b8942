"""The public responses' cache (opendata/cache.py): one computation for the same request asked at once or again,
never older than the ingest's last commit notice, 304 for a client that has the answer, and nothing withheld
served from it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from ioc.db import NOTIFY_CHANNEL
from ioc.processes import free_port
from ioc.up import wait_http
from opendata.cache import Reply, ResponseCache
from tests.opendata_fixtures import T0, THING, open_data_fixture, policy_file  # noqa: F401 (fixtures)
from tests.support.stack import until
from tests.test_opendata_privacy import PROBES, assert_nothing_withheld

NEWEST = f"Datastreams('{THING}:water_level_cm')/Observations?$top=1&$orderby=phenomenonTime desc"
NEW_VALUE = 4242.625


class Counted:
    """A computation that counts its calls and, if told, waits for ``release`` first."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self.reply = reply or Reply(200, b'{"value": []}', rows=0)

    async def __call__(self) -> Reply:
        self.calls += 1
        await self.release.wait()
        return self.reply


def listening_cache(max_age_ms: int = 1000, **kwargs: Any) -> ResponseCache:
    cache = ResponseCache(max_age_ms, **kwargs)
    cache.set_listening(True)
    return cache


async def test_the_same_request_at_once_is_computed_once() -> None:
    cache, compute = listening_cache(), Counted()
    compute.release.clear()
    waiting = [asyncio.create_task(cache.answer(("b", "p", "q"), compute)) for _ in range(50)]
    await until(lambda: cache.hits == 49, what="49 requests waiting for the first one's computation")
    compute.release.set()
    replies = await asyncio.gather(*waiting)
    assert compute.calls == 1 and {r.body for r in replies} == {compute.reply.body}
    await cache.answer(("b", "p", "other query"), compute)
    assert compute.calls == 2  # another query is another answer


async def test_a_commit_notice_or_the_max_age_ends_an_answer() -> None:
    now = [0.0]
    cache, compute = listening_cache(1000, clock=lambda: now[0]), Counted()
    await cache.answer(("k",), compute)
    await cache.answer(("k",), compute)
    assert compute.calls == 1
    cache.notice('{"devices": ["D1"]}')
    await cache.answer(("k",), compute)
    assert compute.calls == 2
    now[0] = 1.5  # older than 1,000 ms
    await cache.answer(("k",), compute)
    assert compute.calls == 3


async def test_without_the_notices_or_a_max_age_nothing_is_shared() -> None:
    for cache in (ResponseCache(1000), listening_cache(0)):
        compute = Counted()
        await cache.answer(("k",), compute)
        await cache.answer(("k",), compute)
        assert compute.calls == 2 and cache.status()["active"] is False
    cache = listening_cache()
    cache.set_listening(False)  # the LISTEN connection was lost: notices could be missed
    compute = Counted()
    await cache.answer(("k",), compute)
    await cache.answer(("k",), compute)
    assert compute.calls == 2


async def test_errors_go_to_those_waiting_but_are_not_kept() -> None:
    cache, busy = listening_cache(), Counted(Reply(503, b"busy", headers={"Retry-After": "1"}))
    busy.release.clear()
    waiting = [asyncio.create_task(cache.answer(("k",), busy)) for _ in range(3)]
    await until(lambda: cache.hits == 2, what="two waiting")
    busy.release.set()
    assert {r.status for r in await asyncio.gather(*waiting)} == {503} and busy.calls == 1
    await cache.answer(("k",), busy)
    assert busy.calls == 2


async def test_a_failed_computation_leaves_the_waiting_to_compute_their_own() -> None:
    cache, ok = listening_cache(), Counted()
    gate = asyncio.Event()

    async def fails() -> Reply:
        await gate.wait()
        raise RuntimeError("the database went away")

    first = asyncio.create_task(cache.answer(("k",), fails))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.answer(("k",), ok))
    await until(lambda: cache.hits == 1, what="the second waiting")
    gate.set()
    with pytest.raises(RuntimeError):
        await first
    assert (await second).status == 200 and ok.calls == 1


@pytest.fixture(scope="module")
def cached(run_ioc, module_scratch_dir, open_data) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``ioc open`` keeping answers up to 60 s: only a commit notice can make one stale within a test."""
    folder = module_scratch_dir("ioc-od-cache-")
    port = free_port()
    env = {
        "IOC_OPEN_DATA_FILE": str(policy_file(folder)),
        "IOC_OPEN_BULK_DIR": str(folder / "bulk"),
        "IOC_OPEN_CACHE_MS": "60000",
        "IOC_OPEN_RATE_PER_MINUTE": "1000000",
        "IOC_OPEN_RATE_BURST": "100000",
    }
    child = run_ioc("open-cache", "open", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/open/health", 30, child)
    httpx.get(f"{base}/open/health", timeout=30).raise_for_status()
    yield base
    child.stop()


async def cache_status(http: httpx.AsyncClient) -> dict[str, Any]:
    """The cache's figures from ``ioc open``'s health."""
    return (await http.get("/open/health")).json()["cache"]  # type: ignore[no-any-return]


async def active(http: httpx.AsyncClient) -> dict[str, Any]:
    """The cache's figures once it hears the commit notices (its LISTEN connection is up)."""
    return await until(lambda: _active(http), timeout=30, what="the cache listening for commit notices")  # type: ignore[no-any-return]


async def _active(http: httpx.AsyncClient) -> dict[str, Any] | None:
    status = await cache_status(http)
    return status if status["active"] else None


async def twice(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, httpx.Response]:
    """``path`` asked twice, the second answer from the cache (asked again if a commit notice came between)."""
    for _ in range(10):
        before = await cache_status(http)
        first = await http.get(path)
        second = await http.get(path)
        after = await cache_status(http)
        if after["generation"] == before["generation"]:
            assert after["hits"] == before["hits"] + 1, path
            return first, second
    pytest.fail(f"commit notices kept coming: {path} was never asked twice between two of them")


async def test_a_new_observation_is_in_the_next_answer_after_its_commit(cached: str, pool: asyncpg.Pool) -> None:
    async with httpx.AsyncClient(base_url=cached, timeout=30) as http:
        await active(http)
        first, again = await twice(http, f"/sta/v1.1/{NEWEST}")
        assert again.headers["ETag"] == first.headers["ETag"]
        status = await cache_status(http)
        at = T0 + timedelta(minutes=2)
        try:
            async with pool.acquire() as conn, conn.transaction():  # as the ingest's writer commits a batch
                await conn.execute(
                    "INSERT INTO measurements (time, device_id, metric, part, value) "
                    "VALUES ($1, $2, 'water_level_cm', '', $3)", at, THING, NEW_VALUE,
                )  # fmt: skip
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, f'{{"devices": ["{THING}"]}}')

            async def heard() -> bool:
                return bool((await cache_status(http))["generation"] > status["generation"])

            await until(heard, what="ioc open hearing the commit notice")
            after = await http.get(f"/sta/v1.1/{NEWEST}")
        finally:
            await pool.execute("DELETE FROM measurements WHERE device_id = $1 AND time = $2", THING, at)
    assert first.json()["value"][0]["result"] != NEW_VALUE
    assert after.json()["value"][0]["result"] == NEW_VALUE and after.headers["ETag"] != first.headers["ETag"]


async def test_a_client_holding_the_answer_gets_304(cached: str) -> None:
    async with httpx.AsyncClient(base_url=cached, timeout=30) as http:
        await active(http)
        full = await http.get(f"/sta/v1.1/Things('{THING}')")
        same = await http.get(f"/sta/v1.1/Things('{THING}')", headers={"If-None-Match": full.headers["ETag"]})
        weak = await http.get(
            f"/sta/v1.1/Things('{THING}')", headers={"If-None-Match": f'"x", W/{full.headers["ETag"]}'}
        )
        other = await http.get(f"/sta/v1.1/Things('{THING}')", headers={"If-None-Match": '"not-this-one"'})
    assert full.status_code == 200 and full.headers["Cache-Control"] == "public, max-age=60"
    assert same.status_code == 304 and same.content == b"" and same.headers["ETag"] == full.headers["ETag"]
    assert weak.status_code == 304
    assert other.status_code == 200 and other.json() == full.json()


async def test_nothing_withheld_is_served_from_the_cache(cached: str) -> None:
    """Every privacy probe twice: the second answer comes from the cache, and neither holds anything withheld."""
    async with httpx.AsyncClient(base_url=cached, timeout=30) as http:
        await active(http)
        for path in PROBES:
            first, second = await twice(http, f"/sta/v1.1/{path}")
            assert first.status_code == second.status_code == 200 and second.content == first.content, path
            assert_nothing_withheld(second.text)

"""Fair public access: the open data pool runs as the read-only role with a statement time-out, and each address
has a request rate (429 with Retry-After)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import psutil
import pytest

from ioc.processes import free_port
from ioc.up import wait_http
from opendata.api import RateLimiter
from opendata.ratelimit import Gate
from tests.opendata_fixtures import THING, open_data_fixture, policy_file, start_server  # noqa: F401
from tests.support.stack import until


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


@pytest.fixture(scope="module")
async def many(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A public flood device with 200,000 readings (removed afterwards): counting them takes far over 1 ms."""
    device = "CNT-OD-1"
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, 'flood', $1, 10.7, 106.6) "
        "ON CONFLICT DO NOTHING",
        device,
    )
    await pool.execute(
        "INSERT INTO measurements (time, device_id, metric, part, value) SELECT now() - n * interval '1 second', "
        "$1, 'water_level_cm', '', n FROM generate_series(1, 200000) n ON CONFLICT DO NOTHING",
        device,
    )
    await pool.execute("ANALYZE measurements")
    yield device
    await pool.execute("DELETE FROM measurements WHERE device_id = $1", device)
    await pool.execute("DELETE FROM devices WHERE device_id = $1", device)


@pytest.fixture(scope="module")
def hurried(run_ioc, module_scratch_dir, many: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server that counts exactly for at most 10 ms (counting 200,000 readings takes several times that)."""
    for base in start_server(run_ioc, module_scratch_dir("ioc-od-count-"), IOC_OPEN_COUNT_EXACT_MS="10"):
        yield base + "/sta/v1.1"


async def test_a_slow_count_is_an_estimate_and_says_so(hurried: str, many: str) -> None:
    url = f"{hurried}/Datastreams('{many}:water_level_cm')/Observations"
    async with httpx.AsyncClient(timeout=30) as http:
        estimated = (await http.get(url, params={"$count": "true", "$top": "2"})).json()
        exact = (await http.get(f"{hurried}/Things('{THING}')/Datastreams", params={"$count": "true"})).json()
    assert estimated.get("@ioc.countEstimated") is True and len(estimated["value"]) == 2, estimated
    assert 20_000 <= estimated["@iot.count"] <= 2_000_000  # the planner's figure for 200,000 rows
    assert exact["@iot.count"] == 2 and "@ioc.countEstimated" not in exact


@pytest.fixture(scope="module")
def tiny(run_ioc, module_scratch_dir, open_data) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server whose open data pool has one connection and 0.3 s statements."""
    env = {"IOC_OPEN_POOL_SIZE": "1", "IOC_OPEN_STATEMENT_TIMEOUT_MS": "300", "IOC_OPEN_RATE_BURST": "1000"}
    for base in start_server(run_ioc, module_scratch_dir("ioc-od-tiny-"), **env):
        yield base + "/sta/v1.1"


async def test_a_full_pool_answers_busy_not_an_error(tiny: str, pool: asyncpg.Pool) -> None:
    """More waiting requests than connections: the ones that wait longer than the time-out get 503 with
    Retry-After (each request here holds the one connection for its whole 0.3 s time-out). Four different
    requests: the same one four times would be computed once (opendata/cache.py)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await asyncio.gather(*(http.get(f"{tiny}/Things?$top={n}") for n in range(1, 5)))
    codes = [a.status_code for a in answers]
    busy = [a for a in answers if a.json().get("message", "").startswith("the open data service is busy")]
    assert set(codes) == {503} and busy, [a.text for a in answers]
    assert all(a.headers["Retry-After"] == "1" for a in busy)


@pytest.fixture(scope="module")
def separate(run_ioc, module_scratch_dir, open_data) -> Iterator[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """``ioc open``: the open data alone in a process of its own (its base URL and process id)."""
    folder = module_scratch_dir("ioc-od-open-")
    port = free_port()
    env = {"IOC_OPEN_DATA_FILE": str(policy_file(folder)), "IOC_OPEN_BULK_DIR": str(folder / "bulk")}
    child = run_ioc("open-only", "open", "--port", str(port), env=env)
    wait_http(f"http://127.0.0.1:{port}/sta/v1.1", 30, child)
    yield f"http://127.0.0.1:{port}", child.proc.pid
    child.stop()


async def test_ioc_open_serves_the_open_data_alone_at_a_lower_priority(separate: tuple[str, int]) -> None:
    base, pid = separate
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        thing = await http.get(f"/sta/v1.1/Things('{THING}')")
        catalog = await http.get("/open/catalog.ttl")
        wall = await http.get("/api/v1/health")
    assert thing.status_code == 200 and thing.json()["@iot.id"] == THING
    assert catalog.status_code == 200 and wall.status_code == 404  # nothing of the wall in it
    assert psutil.Process(pid).nice() == min(19, psutil.Process().nice() + 10)  # IOC_OPEN_NICE, by default


async def test_the_gate_lets_some_work_some_wait_and_sheds_the_rest() -> None:
    """Two at work, one waiting: a fourth request is shed at once (the route answers 503 with Retry-After)."""
    gate = Gate(running=2, waiting=1)
    release = asyncio.Event()
    outcomes: list[bool] = []

    async def request() -> None:
        async with gate.turn() as admitted:
            outcomes.append(admitted)
            if admitted:
                await release.wait()

    tasks = [asyncio.create_task(request()) for _ in range(3)]
    await until(lambda: gate.waiting == 1 and len(outcomes) == 2, what="two at work and one waiting")
    await request()  # returns at once: shed
    assert outcomes == [True, True, False] and gate.status()["shed"] == 1
    release.set()
    await asyncio.gather(*tasks)
    assert outcomes == [True, True, False, True] and gate.status()["waiting"] == 0


async def test_the_open_data_database_processes_run_at_a_lower_priority(tiny: str, pool: asyncpg.Pool) -> None:
    """Its PostgreSQL server processes (on this host) run at IOC_OPEN_NICE, the wall's and the ingest's do not.
    (On ``tiny``, whose burst allows this request whatever the module's other tests asked before.)"""
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{tiny}/Things('{THING}')")).status_code == 200
    rows = await pool.fetch("SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database()")
    nice = {r["pid"]: psutil.Process(r["pid"]).nice() for r in rows if psutil.pid_exists(r["pid"])}
    public = [nice[r["pid"]] for r in rows if r["application_name"] == "ioc-open-data" and r["pid"] in nice]
    others = [nice[r["pid"]] for r in rows if r["application_name"] != "ioc-open-data" and r["pid"] in nice]
    assert public and set(public) == {10}, rows
    assert others and 0 in others

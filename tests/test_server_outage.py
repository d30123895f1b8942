"""The live server rides through a database outage: the real cluster stopped for ~12 s and started again.

During the outage the wall's websocket stays open with its last state and says "database unavailable
since hh:mm"; a session confirmed before it stays valid; REST answers 503 with Retry-After; nothing
answers 500 and nothing writes a traceback. After it, everything recovers by itself within seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dashboards.api.deps import SESSION_COOKIE
from ioc.db import create_pool
from ioc.processes import Child, free_port, spawn
from ioc.settings import Settings
from ioc.up import Stack, wait_http
from tests.support.auth import PASSWORD, create_people
from tests.support.live import LiveClient, http_origin, login, session_headers

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

OUTAGE_S = 12.0  # the was 30 s; the same shape, short enough for the suite
RECOVERY_S = 10.0  # everything is back this soon after the database is


@pytest.fixture(scope="module")
def outage_stack(module_scratch_dir: Callable[[str], Path]) -> Iterator[Stack]:
    """A database and broker of our own (this module stops the database), with the demo fleet."""
    root = module_scratch_dir("ioc-outage-")
    settings = Settings(state_dir=root, db_port=free_port(), mqtt_port=free_port(), environment="test")
    stack = Stack(settings, fast_db=True)
    stack.prepare_state(reset=False)
    stack.start_services()
    try:
        stack.load_data(stack.settings.fleet_file if stack.settings.fleet_file.exists() else None)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def outage_server(outage_stack: Stack) -> Iterator[tuple[str, Child]]:
    """``ioc serve`` on the private stack (1 s heartbeats, so sessions are re-checked during the outage)."""
    port = free_port()
    env = {**outage_stack.child_env("serve"), "IOC_WS_HEARTBEAT_S": "1"}
    log = outage_stack.state_dir / "logs" / "serve-outage.log"
    child = spawn("serve-outage", [sys.executable, "-m", "ioc.cli", "serve", "--port", str(port)], log, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/v1/health", 30, child)
    yield base, child
    child.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def viewers(outage_stack: Stack, outage_server: tuple[str, Child]) -> AsyncIterator[dict[str, str]]:
    """One user per role on the private stack: {role: name}."""
    pool = await create_pool(outage_stack.database_url, max_size=2)
    try:
        yield await create_people(pool, "outage", PASSWORD)
    finally:
        await pool.close()


def server_log(child: Child) -> str:
    """Everything the server has logged so far."""
    assert child.log is not None
    child.log.flush()
    return Path(child.log.name).read_text(errors="replace")


async def wait_until(predicate: Callable[[], object], within: float, what: str) -> float:
    """Poll an async-free predicate until true; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            pytest.fail(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def status_of(client: LiveClient) -> dict[str, object] | None:
    """The newest ``status`` message's data the client received, if any."""
    return next((m["data"] for m in reversed(client.messages) if m["type"] == "status"), None)


async def test_the_wall_rides_through_a_database_outage(
    outage_stack: Stack,
    outage_server: tuple[str, Child],
    viewers: dict[str, str],
    browser: Browser,
) -> None:
    base, child = outage_server
    assert outage_stack.postgres is not None
    ws_url = base.replace("http://", "ws://") + "/ws/v1/live"
    token = await login(base, viewers["viewer"], PASSWORD)
    http = httpx.AsyncClient(base_url=base, timeout=10, headers={"Origin": http_origin(base)})
    http.cookies.set(SESSION_COOKIE, token)
    contexts = [await browser.new_context(viewport={"width": 1920, "height": 1080}) for _ in range(2)]
    try:
        walls = []
        for context, lang in zip(contexts, ("vi", "en"), strict=True):
            resp = await context.request.post(
                f"{base}/api/v1/auth/login", data={"name": viewers["operator"], "password": PASSWORD}
            )
            assert resp.status == 200, await resp.text()
            walls.append(await context.new_page())
            await walls[-1].goto(f"{base}/wall?lang={lang}")
            await walls[-1].wait_for_selector('#conn[data-state="live"]', timeout=15000)
        page, english = walls

        async with LiveClient(ws_url, token) as client:
            await client.subscribe("summary", "kind:flood")
            await client.wait_for(lambda c: {"summary", "kind:flood"} <= c.states.keys(), what="snapshots")
            before = client.states["summary"]["devices"]["total"]
            assert before > 0

            # ---- the database goes away
            stopped_at = time.monotonic()
            await asyncio.to_thread(outage_stack.postgres.stop)
            await client.wait_for(
                lambda c: (status_of(c) or {}).get("database") == "unavailable", within=8, what="the outage status"
            )
            since = str((status_of(client) or {})["since"])
            assert since.endswith("Z")
            # The wall says so, in Vietnamese by default, with the local time it started.
            await page.wait_for_selector('#conn[data-state="database"]', timeout=8000)
            shown = await page.text_content("#conn-text") or ""
            local = await page.evaluate(
                "(s) => new Date(s).toLocaleTimeString('vi-VN', "
                "{hour: '2-digit', minute: '2-digit', timeZone: 'Asia/Ho_Chi_Minh'})",
                since,
            )
            assert shown.startswith("CSDL gián đoạn từ") and local in shown, (shown, local)
            await english.wait_for_selector('#conn[data-state="database"]', timeout=8000)
            shown = await english.text_content("#conn-text") or ""
            assert shown.startswith("Database unavailable since") and local in shown, (shown, local)

            # REST: 503 with Retry-After and a JSON error, never a 500.
            for path in (
                "/api/v1/summary",
                "/api/v1/zones",
                "/api/v1/devices",
                "/api/v1/alerts",
                "/api/v1/devices/FL-BT-001/readings?metric=water_level_cm",
            ):
                r = await http.get(path)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.headers["retry-after"] == "5" and r.json()["error"]["code"] == "database_unavailable"
            # A new login cannot be checked: a clear 503 too.
            r = await http.post("/api/v1/auth/login", json={"name": viewers["admin"], "password": PASSWORD})
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable", r.text
            # A session the server confirmed before the outage reconnects and gets the last state...
            async with LiveClient(ws_url, token) as again:
                await again.subscribe("summary")
                await again.wait_for(lambda c: "summary" in c.states, what="the last state after a reconnect")
                assert again.states["summary"]["devices"]["total"] == before
                assert (status_of(again) or {}).get("database") == "unavailable"
            # ...one it never saw is told to try again later (1013), not failed with an error.
            headers = session_headers("not-a-session-the-server-ever-saw")
            async with connect(ws_url, origin=http_origin(base), additional_headers=headers) as stranger:  # type: ignore[arg-type]
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(stranger.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

            # Hold the outage long enough for several session re-checks (1 s heartbeats) on the open socket.
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
            beats = sum(1 for m in client.messages if m["type"] == "heartbeat")
            assert client.ws is not None and client.ws.close_code is None, "the websocket stayed open"
            assert client.states["summary"]["devices"]["total"] == before, "the last state is kept"

            # ---- the database comes back
            await asyncio.to_thread(outage_stack.postgres.start, outage_stack.state_dir / "logs" / "postgres-2.log")
            restarted = time.monotonic()
            await client.wait_for(
                lambda c: (status_of(c) or {}).get("database") == "ok", within=RECOVERY_S, what="the all-clear"
            )
            ws_back = time.monotonic() - restarted
            await page.wait_for_selector('#conn[data-state="live"]', timeout=RECOVERY_S * 1000)
            assert await page.text_content("#conn-text") == "Trực tiếp"
            await english.wait_for_selector('#conn[data-state="live"]', timeout=RECOVERY_S * 1000)

            async def rest_back() -> float:
                while (await http.get("/api/v1/summary")).status_code != 200:
                    if time.monotonic() - restarted > RECOVERY_S:
                        pytest.fail("REST did not recover")
                    await asyncio.sleep(0.2)
                return time.monotonic() - restarted

            rest_s = await rest_back()
            print(
                f"outage {time.monotonic() - stopped_at:.1f} s; after the restart: websocket all-clear "
                f"{ws_back:.1f} s, REST {rest_s:.1f} s; heartbeats during the outage: {beats}"
            )
            # Live again: a change in the database reaches the open socket.
            conn = await asyncpg.connect(outage_stack.database_url)
            try:
                await conn.execute("UPDATE devices SET status = 'offline' WHERE device_id = 'FL-BT-001'")
                await conn.execute("""SELECT pg_notify('ioc_ingest', '{"devices": ["FL-BT-001"]}')""")
            finally:
                await conn.close()
            await client.wait_for(
                lambda c: any(
                    d["device_id"] == "FL-BT-001" and d["status"] == "offline"
                    for d in c.states["kind:flood"]["devices"]
                ),
                what="a change after the outage",
            )
            assert client.ws.close_code is None
    finally:
        for context in contexts:
            await context.close()
        await http.aclose()

    log = server_log(child)
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
    assert '" 500' not in log, [line for line in log.splitlines() if '" 500' in line]
    assert "database unavailable" in log and "database available again" in log

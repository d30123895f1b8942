"""dashboards.security in a small FastAPI app: cookies, roles, origins, throttling and the websocket guard."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dashboards import security
from dashboards.api import errors
from dashboards.security import AdminDep, OperatorDep, ViewerDep
from ioc import audit
from ioc.processes import free_port
from ioc.settings import Settings
from ioc.throttle import ThrottlePolicy
from tests.support.auth import PASSWORD, create_people
from tests.support.uvicorn_app import serving_app

ORIGIN = "http://testserver"


def make_app(pool: asyncpg.Pool, settings: Settings) -> FastAPI:
    """The security router plus one route per protection level, as the real server will use them."""
    app = FastAPI()
    errors.install(app)
    app.state.pool = pool
    app.state.settings = settings.model_copy(update={"allowed_origins": ["https://wall.example.vn", ORIGIN]})
    app.state.throttle_policy = ThrottlePolicy(base_s=0.2)
    app.include_router(security.router)

    @app.get("/api/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/zones")
    async def zones(user: ViewerDep) -> dict[str, str]:
        return {"seen_by": user.name}

    @app.post("/api/v1/alerts/{alert_id}/acknowledge")
    async def acknowledge(alert_id: int, user: OperatorDep) -> dict[str, Any]:
        await audit.record(pool, user.name, "alert.acknowledge", str(alert_id), "success")
        return {"id": alert_id, "by": user.name}

    @app.post("/api/v1/devices/{device_id}/disable")
    async def disable_device(device_id: str, user: AdminDep) -> dict[str, str]:
        return {"device_id": device_id}

    @app.websocket("/ws/v1/live")
    async def live(websocket: WebSocket) -> None:
        user = await security.websocket_guard(websocket)
        if user is None:
            return
        await websocket.accept()
        await websocket.send_text(f"hello {user.name}")
        await websocket.close()

    return app


@pytest.fixture
async def app(pool: asyncpg.Pool, settings: Settings) -> FastAPI:
    """A fresh test app."""
    return make_app(pool, settings)


def client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An in-process client from ``address``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 1234)), base_url=ORIGIN)


@asynccontextmanager
async def logged_in(app: FastAPI, name: str, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a session cookie for ``name``."""
    async with client(app, address) as c:
        r = await c.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield c


async def test_only_health_and_login_are_public(app: FastAPI) -> None:
    async with client(app) as c:
        assert (await c.get("/api/v1/health")).status_code == 200
        assert (await c.get("/login")).status_code == 200
        for method, path in (
            ("GET", "/api/v1/zones"),
            ("GET", "/api/v1/me"),
            ("GET", "/api/v1/users"),
            ("GET", "/api/v1/audit"),
            ("POST", "/api/v1/alerts/1/acknowledge"),
        ):
            r = await c.request(method, path)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
        c.cookies.set(security.SESSION_COOKIE, "made-up")
        assert (await c.get("/api/v1/zones")).status_code == 401
        assert (await c.get("/admin", follow_redirects=False)).headers["location"] == "/login?next=/admin"


async def test_login_sets_a_strict_httponly_cookie(app: FastAPI, people: dict[str, str]) -> None:
    async with client(app) as c:
        r = await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": PASSWORD})
        assert r.status_code == 200 and r.json() == {
            "name": people["viewer"],
            "role": "viewer",
            "must_change": False,
            "disabled": False,
            "display": False,
        }
        cookie = r.headers["set-cookie"].lower()
        assert "max-age=43200" in cookie or "max-age=43199" in cookie  # a shift: 12 h
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain http in this test; https adds Secure
        assert (await c.get("/api/v1/me")).json()["name"] == people["viewer"]
        assert (await c.post("/api/v1/auth/logout", headers={"Origin": ORIGIN})).status_code == 204
        assert (await c.get("/api/v1/me")).status_code == 401


async def test_a_pages_logout_form_lands_on_the_login_page(app: FastAPI, people: dict[str, str]) -> None:
    """The pages log out with a form navigation: 303 to /login with the cookie cleared and the session ended."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": PASSWORD})).is_success
        r = await c.post("/api/v1/auth/logout", headers={"Origin": ORIGIN, "Accept": "text/html,*/*;q=0.8"})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert "max-age=0" in r.headers["set-cookie"].lower()
        assert (await c.get("/api/v1/me")).status_code == 401


async def test_secure_cookie_over_https(app: FastAPI, people: dict[str, str]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as c:
        r = await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()


async def test_roles_are_enforced(app: FastAPI, people: dict[str, str], pool: asyncpg.Pool) -> None:
    async with AsyncExitStack() as stack:
        viewer, operator, admin = [
            await stack.enter_async_context(logged_in(app, people[r])) for r in ("viewer", "operator", "admin")
        ]
        assert (await viewer.get("/api/v1/zones")).status_code == 200
        r = await viewer.post("/api/v1/alerts/7/acknowledge")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert (await operator.post("/api/v1/alerts/7/acknowledge")).json() == {
            "id": 7,
            "by": people["operator"],
        }
        for c in (viewer, operator):
            assert (await c.get("/api/v1/users")).status_code == 403
            assert (await c.post("/api/v1/users", json={"name": "x-new", "role": "admin"})).status_code == 403
            assert (await c.post(f"/api/v1/users/{people['admin']}/disable")).status_code == 403
            assert (await c.get("/api/v1/audit")).status_code == 403
            assert (await c.post("/api/v1/devices/d1/disable")).status_code == 403
        assert (await admin.post("/api/v1/devices/d1/disable")).status_code == 200
        denied = await audit.recent(pool, actor=people["operator"], limit=5)
        assert any(e.outcome == "denied" and e.action == "POST /api/v1/users" for e in denied)
        acked = await audit.recent(pool, action="alert.acknowledge", actor=people["operator"], limit=1)
        assert acked and acked[0].target == "7"


async def test_admin_manages_users_and_reads_audit(app: FastAPI, people: dict[str, str]) -> None:
    newcomer = f"new-{uuid.uuid4().hex[:6]}"
    async with logged_in(app, people["admin"]) as admin:
        r = await admin.post("/api/v1/users", json={"name": newcomer, "role": "operator"}, headers={"Origin": ORIGIN})
        assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
        one_time = r.json()["password"]
        assert (await admin.post("/api/v1/users", json={"name": newcomer, "role": "viewer"})).status_code == 409
        assert newcomer in {u["name"] for u in (await admin.get("/api/v1/users")).json()["users"]}
        async with client(app, "127.0.0.2") as fresh:
            r = await fresh.post("/api/v1/auth/login", json={"name": newcomer, "password": one_time})
            assert r.json()["must_change"]
            assert (await fresh.get("/api/v1/zones")).json()["error"]["code"] == "password_change_required"
            r = await fresh.post("/api/v1/auth/password", json={"current": one_time, "new": PASSWORD})
            assert r.status_code == 204
            r = await fresh.post("/api/v1/auth/login", json={"name": newcomer, "password": PASSWORD})
            assert (await fresh.get("/api/v1/zones")).status_code == 200
            assert (await admin.post(f"/api/v1/users/{newcomer}/disable")).json()["disabled"]
            assert (await fresh.get("/api/v1/zones")).status_code == 401
        assert (await admin.post(f"/api/v1/users/{people['admin']}/disable")).status_code == 409
        assert (await admin.post("/api/v1/users/nobody-at-all/disable")).status_code == 404
        entries = (await admin.get("/api/v1/audit", params={"target": newcomer})).json()["entries"]
        assert [e["action"] for e in entries][:3] == ["user.disable", "login", "user.passwd"]
        assert all({"time", "actor", "source", "outcome", "target"} <= e.keys() for e in entries)
        assert (await admin.get("/admin")).status_code == 200


async def test_cross_origin_state_changes_are_refused(app: FastAPI, people: dict[str, str]) -> None:
    async with logged_in(app, people["operator"]) as op:
        r = await op.post("/api/v1/alerts/1/acknowledge", headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        r = await op.post("/api/v1/alerts/1/acknowledge", headers={"Origin": "https://wall.example.vn"})
        assert r.status_code == 200
    async with client(app) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"name": people["viewer"], "password": PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403


async def test_origin_is_checked_against_configuration_not_the_host_header(
    app: FastAPI, people: dict[str, str]
) -> None:
    """Issue 11: an Origin equal to the request's own Host passed, so a rebound name was trusted."""
    rebound = {"Host": "rebound.example", "Origin": "http://rebound.example"}
    async with logged_in(app, people["operator"]) as op:
        r = await op.post("/api/v1/alerts/1/acknowledge", headers=rebound)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert (await op.post("/api/v1/alerts/1/acknowledge", headers={"Origin": ORIGIN})).status_code == 200
    async with client(app) as c:
        r = await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": PASSWORD}, headers=rebound)
        assert r.status_code == 403


async def test_password_change_is_throttled(app: FastAPI, pool: asyncpg.Pool) -> None:
    """Issue 11: POST /api/v1/auth/password was never throttled; wrong current passwords now count."""
    names = await create_people(pool, "pw", PASSWORD)
    async with logged_in(app, names["viewer"], "10.2.0.9") as c:
        codes = []
        for i in range(6):
            r = await c.post("/api/v1/auth/password", json={"current": f"guess number {i}", "new": "x" * 12})
            codes.append(r.status_code)
        assert codes == [403] * 5 + [429], codes
        assert r.json()["error"]["code"] == "too_many_requests" and int(r.headers["retry-after"]) >= 1
        r = await c.post("/api/v1/auth/password", json={"current": PASSWORD, "new": "x" * 12})
        assert r.status_code == 429  # even the right one, until the wait ends
        await asyncio.sleep(0.3)  # the thing under test: the throttle's wait passes
        assert (await c.post("/api/v1/auth/password", json={"current": PASSWORD, "new": "x" * 12})).status_code == 204


async def test_repeated_failures_get_429_with_retry_after(app: FastAPI, people: dict[str, str]) -> None:
    async with client(app, "10.2.0.1") as c:
        codes = []
        for _ in range(6):
            r = await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": "wrong password"})
            codes.append(r.status_code)
        assert codes == [401] * 5 + [429]
        assert int(r.headers["retry-after"]) >= 1
        r = await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": PASSWORD})
        assert r.status_code == 429
        await asyncio.sleep(0.3)  # the thing under test: the throttle's wait passes
        r = await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": PASSWORD})
        assert r.status_code == 200


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    """The app under a real uvicorn on a free port, in this event loop; yields its http origin."""
    port = free_port()
    app.state.settings = app.state.settings.model_copy(update={"http_port": port})  # as `ioc serve --port` does
    async with serving_app(app, port) as base:
        yield base.removeprefix("http://")


async def _ws(host: str, origin: str | None, cookie: str | None) -> tuple[int | None, list[str]]:
    """Connect to the live socket; return the close code (None if still open) and what was received."""
    headers = {"Cookie": f"{security.SESSION_COOKIE}={cookie}"} if cookie else {}
    received: list[str] = []
    async with connect(f"ws://{host}/ws/v1/live", origin=origin, additional_headers=headers) as ws:  # type: ignore[arg-type]
        try:
            while True:
                received.append(str(await asyncio.wait_for(ws.recv(), 5)))
        except ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else None), received


async def test_websocket_needs_session_and_allowed_origin(server: str, app: FastAPI, people: dict[str, str]) -> None:
    async with client(app) as c:
        r = await c.post("/api/v1/auth/login", json={"name": people["viewer"], "password": PASSWORD})
        token = r.cookies[security.SESSION_COOKIE]
    own = f"http://{server}"
    assert await _ws(server, own, None) == (1008, [])
    assert await _ws(server, own, "not-a-session") == (1008, [])
    assert await _ws(server, "https://evil.example", token) == (1008, [])
    assert await _ws(server, None, token) == (1008, [])
    assert await _ws(server, "https://wall.example.vn", token) == (1000, [f"hello {people['viewer']}"])
    assert await _ws(server, own, token) == (1000, [f"hello {people['viewer']}"])

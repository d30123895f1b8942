"""Dependencies of the API routes, as ``Annotated`` aliases so route signatures stay one line.

Besides the application's state (settings, pool, connection, hub) this is where a request learns who
is calling: the session cookie names a ``User`` and routes declare the least role they need with
``ViewerDep``, ``OperatorDep`` or ``AdminDep``. ``dashboards.security`` (the login and users endpoints
and the websocket guard) builds on these; they live here so every router can import them without
importing that router.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

import asyncpg
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from dashboards.api.errors import ApiError
from dashboards.availability import Availability, DatabaseUnavailable, is_unavailable
from dashboards.hub import Hub
from ioc import accounts, audit, sessions
from ioc.accounts import User
from ioc.sessions import SessionPolicy
from ioc.settings import Settings
from ioc.settings import get_settings as environment_settings
from ioc.throttle import ThrottlePolicy

logger = logging.getLogger(__name__)

SESSION_COOKIE = "ioc_session"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
HUB_WAIT_S = 30.0  # a request while the live state is first loading waits this long for it


def get_settings(conn: HTTPConnection) -> Settings:
    """The application's settings (the environment's when the app has none)."""
    return getattr(conn.app.state, "settings", None) or environment_settings()


def get_pool(conn: HTTPConnection) -> asyncpg.Pool:
    """The application's connection pool."""
    return conn.app.state.pool  # type: ignore[no-any-return]


def timescale(conn: HTTPConnection) -> bool:
    """Whether the database has TimescaleDB (found once at start-up)."""
    return bool(getattr(conn.app.state, "timescale", False))


def get_availability(conn: HTTPConnection) -> Availability:
    """The application's view of the database (an app without one gets one that never saw a session)."""
    availability = getattr(conn.app.state, "availability", None)
    if availability is None:
        availability = conn.app.state.availability = Availability(timedelta(0))
    return availability  # type: ignore[no-any-return]


async def get_hub(request: Request) -> Hub:
    """The application's live hub with its state loaded; 503 while the database is away or it is not loaded."""
    hub: Hub = request.app.state.hub
    availability = get_availability(request)
    if availability.down:
        raise DatabaseUnavailable(availability.down_since)
    try:
        await hub.ready(HUB_WAIT_S)
    except TimeoutError as exc:
        raise ApiError(503, "unavailable", "the live state is not loaded yet; try again") from exc
    return hub


async def get_conn(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for the duration of one request; the database being away becomes a 503."""
    try:
        async with request.app.state.pool.acquire() as conn:
            yield conn
    except Exception as exc:
        if is_unavailable(exc):
            raise get_availability(request).unavailable(exc) from exc
        raise


def session_policy(conn: HTTPConnection) -> SessionPolicy:
    """The app's session lifetimes (``app.state.session_policy``, else the defaults)."""
    return getattr(conn.app.state, "session_policy", None) or SessionPolicy()


def throttle_policy(conn: HTTPConnection) -> ThrottlePolicy:
    """The app's login throttling (``app.state.throttle_policy``, else the defaults)."""
    return getattr(conn.app.state, "throttle_policy", None) or ThrottlePolicy()


def source_address(conn: HTTPConnection) -> str:
    """The peer's address; a forwarded client address only from IOC_TRUSTED_PROXIES (see dashboards.server)."""
    return conn.client.host if conn.client else ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def allowed_origins(conn: HTTPConnection) -> set[str]:
    """IOC_ALLOWED_ORIGINS, IOC_PUBLIC_URL's origin, and this server's own http://localhost|127.0.0.1|[::1]:port.

    Never the Host header of the request itself: a page on another name that resolves here (DNS
    rebinding) would otherwise pass.
    """
    settings = get_settings(conn)
    port = settings.http_port
    own = {f"http://localhost:{port}", f"http://127.0.0.1:{port}", f"http://[::1]:{port}"}
    configured = {o.rstrip("/").lower() for o in settings.allowed_origins} | {_origin(settings.public_url)}
    return (own | configured) - {""}


def origin_allowed(conn: HTTPConnection, *, required: bool) -> bool:
    """True when the Origin header is allowed (or absent and not ``required``)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return not required
    return origin.rstrip("/").lower() in allowed_origins(conn)


def refusal_log(conn: HTTPConnection) -> audit.RefusalLog:
    """The app's rate-limited writer of refusals (made on first use when the app has none)."""
    state = conn.app.state
    if getattr(state, "refusals", None) is None:
        state.refusals = audit.RefusalLog()
    return state.refusals  # type: ignore[no-any-return]


async def optional_user(conn: HTTPConnection) -> User | None:
    """The session's user, or None without a live session (also used to re-check open websockets).

    While the database is away, a session it confirmed within the grace period is still taken; any
    other raises DatabaseUnavailable (nobody can tell whether it is live).
    """
    token = conn.cookies.get(SESSION_COOKIE)
    availability = get_availability(conn)
    try:
        user = await sessions.session_user(get_pool(conn), token, session_policy(conn))
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        availability.failed(exc)
        remembered = availability.recall(token)
        if remembered is None:
            raise DatabaseUnavailable(availability.down_since) from exc
        return remembered
    if user is None:
        availability.forget(token)
    elif token:
        availability.remember(token, user)
    return user


async def refused(conn: HTTPConnection, actor: str, reason: str, **detail: object) -> None:
    """Audit a refused request or websocket (outcome ``denied``; the action is its method and path).

    Through the app's ``RefusalLog``: one row per source and action per minute, repeats counted. The
    refusal stands when the database is away; only its audit row is lost (and logged).
    """
    method = getattr(conn, "method", "WS")  # a WebSocket has no method
    try:
        action, source, why = f"{method} {conn.url.path}", source_address(conn), {"reason": reason, **detail}
        await audit.record(get_pool(conn), actor, action, "", "denied", source, why, refusals=refusal_log(conn))
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        get_availability(conn).failed(exc)
        path = audit.log_safe(conn.url.path)
        logger.warning("refusal of %s %s not audited: the database is unavailable", method, path)


async def current_user(request: Request) -> User:
    """The logged-in user (401 without a live session; 403 for a cross-site state change); refusals are audited."""
    if request.method in UNSAFE_METHODS and not origin_allowed(request, required=False):
        await refused(request, "", "origin", origin=request.headers.get("origin", ""))
        raise ApiError(403, "forbidden", "cross-origin request refused")
    user = await optional_user(request)
    if user is None:
        await refused(request, "", "no session")
        raise ApiError(401, "unauthorized", "log in first")
    return user


def require_role(role: str) -> Callable[..., Awaitable[User]]:
    """A dependency admitting users whose role includes ``role`` and who have no pending password change."""
    accounts.check_role(role)

    async def dependency(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
        if user.must_change:
            await refused(request, user.name, "password change required")
            raise ApiError(403, "password_change_required", "change your one-time password first")
        if not user.can(role):
            # Refused reads of admin data are audited too: a viewer probing them is worth knowing about.
            await refused(request, user.name, "role", needs=role, role=user.role)
            raise ApiError(403, "forbidden", f"this needs the {role} role")
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
HubDep = Annotated[Hub, Depends(get_hub)]
TimescaleDep = Annotated[bool, Depends(timescale)]
ConnDep = Annotated[asyncpg.Connection, Depends(get_conn)]
SourceDep = Annotated[str, Depends(source_address)]
UserDep = Annotated[User, Depends(current_user)]
ViewerDep = Annotated[User, Depends(require_role("viewer"))]
OperatorDep = Annotated[User, Depends(require_role("operator"))]
AdminDep = Annotated[User, Depends(require_role("admin"))]

"""Who may do what on the server: the session cookie, role dependencies, the websocket guard, and the
login, users and audit endpoints with their two pages.

Roles nest (viewer < operator < admin). Routes declare the least role they need with ``ViewerDep``,
``OperatorDep`` or ``AdminDep``; only health and the login page and its assets are public.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from dashboards.api.deps import ConnDep
from dashboards.api.errors import ApiError, error_body
from ioc import audit, auth
from ioc.auth import SessionPolicy, ThrottlePolicy, User
from ioc.settings import Settings, get_settings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "ioc_session"
WS_POLICY_VIOLATION = 1008
STATIC_DIR = Path(__file__).resolve().parent / "static"
I18N_DIR = Path(__file__).resolve().parent / "i18n"
LANGUAGES = ("vi", "en")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Our pages: no framing (clickjacking), no inline script (inline styles only), nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NO_STORE = {"Cache-Control": "no-store"}


def _settings(conn: HTTPConnection) -> Settings:
    return getattr(conn.app.state, "settings", None) or get_settings()


def _pool(conn: HTTPConnection) -> asyncpg.Pool:
    return conn.app.state.pool  # type: ignore[no-any-return]


def session_policy(conn: HTTPConnection) -> SessionPolicy:
    """The app's session lifetimes (``app.state.session_policy``, else the defaults)."""
    return getattr(conn.app.state, "session_policy", None) or SessionPolicy()


def throttle_policy(conn: HTTPConnection) -> ThrottlePolicy:
    """The app's login throttling (``app.state.throttle_policy``, else the defaults)."""
    return getattr(conn.app.state, "throttle_policy", None) or ThrottlePolicy()


def source_address(conn: HTTPConnection) -> str:
    """The peer's address (behind a proxy, run uvicorn with --proxy-headers so this is the client's)."""
    return conn.client.host if conn.client else ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def allowed_origins(conn: HTTPConnection) -> set[str]:
    """IOC_ALLOWED_ORIGINS, the public URL's origin, and the origin this request was addressed to."""
    settings = _settings(conn)
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    own = f"{scheme}://{conn.headers.get('host', '')}".lower()
    return {o.rstrip("/").lower() for o in settings.allowed_origins} | {_origin(settings.public_url), own} - {
        ""
    }


def origin_allowed(conn: HTTPConnection, *, required: bool) -> bool:
    """True when the Origin header is allowed (or absent and not ``required``)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return not required
    return origin.rstrip("/").lower() in allowed_origins(conn)


def is_https(conn: HTTPConnection) -> bool:
    """True when the browser reached us over https (directly or per the public URL)."""
    return conn.url.scheme in {"https", "wss"} or _settings(conn).public_url.startswith("https://")


async def optional_user(request: Request) -> User | None:
    """The session's user, or None without a live session."""
    return await auth.session_user(
        _pool(request), request.cookies.get(SESSION_COOKIE), session_policy(request)
    )


async def current_user(request: Request) -> User:
    """The logged-in user (401 without a live session; 403 for a cross-site state change)."""
    if request.method in UNSAFE_METHODS and not origin_allowed(request, required=False):
        raise ApiError(403, "forbidden", "cross-origin request refused")
    user = await optional_user(request)
    if user is None:
        raise ApiError(401, "unauthorized", "log in first")
    return user


def require_role(role: str) -> Callable[..., Awaitable[User]]:
    """A dependency admitting users whose role includes ``role`` and who have no pending password change."""
    auth.check_role(role)

    async def dependency(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
        if user.must_change:
            raise ApiError(403, "password_change_required", "change your one-time password first")
        if not user.can(role):
            if request.method in UNSAFE_METHODS:
                await audit.record(
                    _pool(request),
                    user.name,
                    f"{request.method} {request.url.path}",
                    "",
                    "denied",
                    source_address(request),
                    {"needs": role, "role": user.role},
                )
            raise ApiError(403, "forbidden", f"this needs the {role} role")
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


CurrentUserDep = Annotated[User, Depends(current_user)]
ViewerDep = Annotated[User, Depends(require_role("viewer"))]
OperatorDep = Annotated[User, Depends(require_role("operator"))]
AdminDep = Annotated[User, Depends(require_role("admin"))]


async def websocket_guard(websocket: WebSocket, role: str = "viewer") -> User | None:
    """Admit a websocket with a live session and an allowed Origin; else close it with 1008, return None.

    Call it first in the endpoint. A refused socket is accepted and closed at once, so the browser sees
    code 1008 (and can go to the login page) but not a byte of data.
    """
    user = None
    if origin_allowed(websocket, required=True):
        user = await auth.session_user(
            _pool(websocket), websocket.cookies.get(SESSION_COOKIE), session_policy(websocket)
        )
    if user is None or user.must_change or not user.can(role):
        await websocket.accept()
        await websocket.close(code=WS_POLICY_VIOLATION)
        logger.info(
            "websocket refused (origin=%s, user=%s)",
            audit.log_safe(websocket.headers.get("origin", "")),
            user.name if user else None,
        )
        return None
    return user


class LoginBody(BaseModel):
    """Credentials of a login."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=auth.MAX_PASSWORD)


class PasswordBody(BaseModel):
    """A user's own password change."""

    current: str = Field(min_length=1, max_length=auth.MAX_PASSWORD)
    new: str = Field(min_length=auth.MIN_PASSWORD, max_length=auth.MAX_PASSWORD)


class NewUserBody(BaseModel):
    """A user to add; without a password a one-time one is generated and returned once."""

    name: str = Field(min_length=1, max_length=64)
    role: str
    password: str | None = Field(default=None, min_length=auth.MIN_PASSWORD, max_length=auth.MAX_PASSWORD)


def _user_json(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "must_change": user.must_change, "disabled": user.disabled}


def _refused(exc: auth.AuthError) -> ApiError:
    if isinstance(exc, auth.UserExists):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, auth.NoSuchUser):
        return ApiError(404, "not_found", str(exc))
    return ApiError(400, "bad_request", str(exc))


router = APIRouter()


@router.post("/api/v1/auth/login")
async def login(body: LoginBody, request: Request, conn: ConnDep) -> Response:
    """Open a session (sets the HttpOnly cookie); 401 on bad credentials, 429 + Retry-After when throttled."""
    if not origin_allowed(request, required=False):
        raise ApiError(403, "forbidden", "cross-origin login refused")
    try:
        result = await auth.login(
            conn,
            body.name,
            body.password,
            source=source_address(request),
            user_agent=request.headers.get("user-agent", ""),
            sessions=session_policy(request),
            throttle=throttle_policy(request),
        )
    except auth.Throttled as exc:
        retry = max(1, int(exc.retry_after + 0.999))
        return JSONResponse(
            error_body("too_many_requests", str(exc), retry_after_s=retry),
            status_code=429,
            headers={"Retry-After": str(retry), **NO_STORE},
        )
    except auth.LoginFailed as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc
    response = JSONResponse(_user_json(result.user), headers=NO_STORE)
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        max_age=int(session_policy(request).absolute.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.post("/api/v1/auth/logout", status_code=204)
async def logout(request: Request, conn: ConnDep) -> Response:
    """End the session (if any) and clear the cookie."""
    if not origin_allowed(request, required=False):
        raise ApiError(403, "forbidden", "cross-origin request refused")
    await auth.logout(conn, request.cookies.get(SESSION_COOKIE), source=source_address(request))
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request)
    )
    return response


@router.post("/api/v1/auth/password", status_code=204)
async def change_password(
    body: PasswordBody, user: CurrentUserDep, request: Request, conn: ConnDep
) -> Response:
    """Change your own password (required after a one-time password); every session of yours ends."""
    try:
        await auth.change_own_password(
            conn, user.name, body.current, body.new, source=source_address(request)
        )
    except auth.LoginFailed as exc:
        raise ApiError(403, "forbidden", str(exc)) from exc
    except auth.AuthError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request)
    )
    return response


@router.get("/api/v1/me")
async def me(user: CurrentUserDep) -> dict[str, Any]:
    """The logged-in user and their role."""
    return _user_json(user)


@router.get("/api/v1/users")
async def users(admin: AdminDep, conn: ConnDep) -> dict[str, Any]:
    """Every user (admin)."""
    return {"users": [_user_json(u) for u in await auth.list_users(conn)]}


@router.post("/api/v1/users", status_code=201)
async def add_user(body: NewUserBody, admin: AdminDep, request: Request, conn: ConnDep) -> JSONResponse:
    """Add a user (admin); a generated one-time password is in the answer, once."""
    try:
        password = await auth.create_user(
            conn, body.name, body.role, body.password, actor=admin.name, source=source_address(request)
        )
    except auth.AuthError as exc:
        raise _refused(exc) from exc
    answer: dict[str, Any] = {"name": auth.normalise_name(body.name), "role": body.role}
    if body.password is None:
        answer["password"] = password
    return JSONResponse(answer, status_code=201, headers=NO_STORE)


@router.post("/api/v1/users/{name}/disable")
async def disable_user(name: str, admin: AdminDep, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Disable a user and end their sessions (admin; not yourself)."""
    if name.lower() == admin.name:
        raise ApiError(409, "conflict", "you cannot disable yourself")
    try:
        await auth.set_disabled(conn, name, True, actor=admin.name, source=source_address(request))
    except auth.AuthError as exc:
        raise _refused(exc) from exc
    return {"name": name.lower(), "disabled": True}


@router.post("/api/v1/users/{name}/enable")
async def enable_user(name: str, admin: AdminDep, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Enable a disabled user (admin)."""
    try:
        await auth.set_disabled(conn, name, False, actor=admin.name, source=source_address(request))
    except auth.AuthError as exc:
        raise _refused(exc) from exc
    return {"name": name.lower(), "disabled": False}


@router.post("/api/v1/users/{name}/reset")
async def reset_password(name: str, admin: AdminDep, request: Request, conn: ConnDep) -> JSONResponse:
    """Give a user a new one-time password (admin); their sessions end."""
    try:
        password = await auth.set_password(conn, name, actor=admin.name, source=source_address(request))
    except auth.AuthError as exc:
        raise _refused(exc) from exc
    return JSONResponse({"name": name.lower(), "password": password}, headers=NO_STORE)


@router.get("/api/v1/audit")
async def audit_log(
    admin: AdminDep,
    conn: ConnDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """The audit log, newest first (admin); page with ``before`` = the last id seen."""
    entries = await audit.recent(
        conn, limit=limit, before_id=before, action=action, actor=actor, target=target
    )
    return {
        "entries": [e.as_json() for e in entries],
        "next_before": entries[-1].id if len(entries) == limit else None,
    }


@router.get("/login", include_in_schema=False)
async def login_page() -> FileResponse:
    """The login page (public)."""
    return FileResponse(STATIC_DIR / "login.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/admin", include_in_schema=False, response_model=None)
async def admin_page(request: Request) -> FileResponse | RedirectResponse:
    """The users and audit page (admins; others go to the login page)."""
    user = await optional_user(request)
    if user is None or not user.can("admin") or user.must_change:
        return RedirectResponse("/login?next=/admin", status_code=303)
    return FileResponse(STATIC_DIR / "admin.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/auth/i18n/{lang}.json", include_in_schema=False)
async def messages(lang: str) -> FileResponse:
    """The login and admin pages' messages (until they are merged into the main catalogues)."""
    if lang not in LANGUAGES:
        raise ApiError(404, "not_found", "unknown language")
    return FileResponse(I18N_DIR / f"security.{lang}.json", media_type="application/json", headers=NO_STORE)

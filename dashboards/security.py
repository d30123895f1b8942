"""Who may do what on the server: the websocket guard, the loopback-only guard of ``/metrics``, and the
login, users and audit endpoints with their two pages.

Roles nest (viewer < operator < supervisor < admin). Routes declare the least role they need with ``ViewerDep``,
``OperatorDep`` or ``AdminDep`` (defined in ``dashboards.api.deps`` with the session cookie and
``current_user``, re-exported here); only health and the login page and its assets are public.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboards.api.deps import (
    SESSION_COOKIE,
    AdminDep,
    ConnDep,
    OperatorDep,
    UserDep,
    ViewerDep,
    current_user,
    get_availability,
    get_settings,
    optional_user,
    origin_allowed,
    refusal_log,
    refused,
    require_role,
    session_policy,
    source_address,
    throttle_policy,
)
from dashboards.api.errors import ApiError, error_body
from ioc import accounts, audit, sessions, throttle
from ioc.accounts import User

__all__ = [
    "SESSION_COOKIE",
    "AdminDep",
    "OperatorDep",
    "UserDep",
    "ViewerDep",
    "NoSniff",
    "current_user",
    "loopback_only",
    "optional_user",
    "require_role",
    "router",
    "source_address",
    "websocket_guard",
    "websocket_user",
]

logger = logging.getLogger(__name__)

WS_POLICY_VIOLATION = 1008
STATIC_DIR = Path(__file__).resolve().parent / "static"
I18N_DIR = Path(__file__).resolve().parent / "i18n"
LANGUAGES = ("vi", "en")
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


class NoSniff:
    """ASGI middleware: ``X-Content-Type-Options: nosniff`` on every HTTP response the application sends.

    That includes errors, static files and a websocket refused before its handshake, which is answered
    as a JSON 403 (``{"error": ...}``) instead of the server's bare one where the server allows it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the header to the response's start."""
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        accepted = False
        can_answer = "websocket.http.response" in scope.get("extensions", {})

        async def send_with_header(message: Message) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind in {"http.response.start", "websocket.http.response.start"}:
                message.setdefault("headers", [])
                MutableHeaders(scope=message)["X-Content-Type-Options"] = "nosniff"
            elif kind == "websocket.accept":
                accepted = True
            elif kind == "websocket.close" and not accepted and can_answer:
                body = json.dumps(error_body("forbidden", "websocket refused")).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ]
                await send({"type": "websocket.http.response.start", "status": 403, "headers": headers})
                await send({"type": "websocket.http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_with_header)


def is_https(conn: HTTPConnection) -> bool:
    """True when the browser reached us over https (directly or per the public URL)."""
    return conn.url.scheme in {"https", "wss"} or get_settings(conn).public_url.startswith("https://")


def is_loopback(conn: HTTPConnection) -> bool:
    """True when the peer is this host (127.0.0.0/8 or ::1), as seen after uvicorn's proxy headers."""
    try:
        return ipaddress.ip_address(source_address(conn)).is_loopback
    except ValueError:
        return False


async def loopback_only(request: Request) -> None:
    """Dependency of ``/metrics``: 404 for any peer but this host, so other hosts' browsers learn nothing.

    Prometheus scrapes from the same host (or through an SSH tunnel or a local agent); behind a trusted
    reverse proxy (IOC_TRUSTED_PROXIES) the client's address is the forwarded one, so proxied requests
    are refused too.
    """
    if not is_loopback(request):
        raise ApiError(404, "not_found", "not found")


async def websocket_user(websocket: WebSocket, role: str = "viewer") -> User | None:
    """The websocket's user while its session is live and allows ``role`` (else None)."""
    user = await optional_user(websocket)
    if user is None or user.must_change or not user.can(role):
        return None
    return user


async def websocket_guard(websocket: WebSocket, role: str = "viewer") -> User | None:
    """Admit a websocket with a live session and an allowed Origin; else close it with 1008, return None.

    Call it first in the endpoint. A refused socket is accepted and closed at once, so the browser sees
    code 1008 (and can go to the login page) but not a byte of data. Refusals are audited.
    """
    origin_ok = origin_allowed(websocket, required=True)
    user = await websocket_user(websocket, role) if origin_ok else None
    if user is None:
        await websocket.accept()
        await websocket.close(code=WS_POLICY_VIOLATION)
        reason = "no session or role" if origin_ok else "origin"
        await refused(websocket, "", reason, origin=websocket.headers.get("origin", ""))
        logger.info("websocket refused (%s, origin=%s)", reason, audit.log_safe(websocket.headers.get("origin", "")))
        return None
    return user


class LoginBody(BaseModel):
    """Credentials of a login."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=accounts.MAX_PASSWORD)


class PasswordBody(BaseModel):
    """A user's own password change."""

    current: str = Field(min_length=1, max_length=accounts.MAX_PASSWORD)
    new: str = Field(min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)


class NewUserBody(BaseModel):
    """A user to add; without a password a one-time one is generated and returned once."""

    name: str = Field(min_length=1, max_length=64)
    role: str
    password: str | None = Field(default=None, min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)
    display: bool = Field(False, description="a wall display account: viewer only, sessions last days")


def _user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "must_change": user.must_change,
        "disabled": user.disabled,
        "display": user.display,
    }


def _too_many(exc: throttle.Throttled) -> JSONResponse:
    retry = max(1, int(exc.retry_after + 0.999))
    return JSONResponse(
        error_body("too_many_requests", str(exc), retry_after_s=retry),
        status_code=429,
        headers={"Retry-After": str(retry), **NO_STORE},
    )


def _refused(exc: accounts.AuthError) -> ApiError:
    if isinstance(exc, accounts.UserExists):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, accounts.NoSuchUser):
        return ApiError(404, "not_found", str(exc))
    return ApiError(400, "bad_request", str(exc))


def _guessing(request: Request) -> dict[str, Any]:
    """What a password check needs to count a wrong guess: the address, the throttle and the refusal log."""
    return {"source": source_address(request), "throttle": throttle_policy(request), "refusals": refusal_log(request)}


def _signed_out(request: Request) -> Response:
    """204 (a page's form navigation, which asks for HTML: 303 to the login page), clearing the session cookie."""
    wants_page = "text/html" in request.headers.get("accept", "")
    response = RedirectResponse("/login", status_code=303) if wants_page else Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request))
    return response


router = APIRouter()


@router.post("/api/v1/auth/login")
async def login(body: LoginBody, request: Request, conn: ConnDep) -> Response:
    """Open a session (sets the HttpOnly cookie); 401 on bad credentials, 429 + Retry-After when throttled."""
    if not origin_allowed(request, required=False):
        origin = audit.log_safe(request.headers.get("origin", ""), 100)
        raise ApiError(403, "forbidden", f"login refused from {origin}: not IOC_PUBLIC_URL nor in IOC_ALLOWED_ORIGINS")
    try:
        agent, policy = request.headers.get("user-agent", ""), session_policy(request)
        result = await sessions.login(
            conn, body.name, body.password, user_agent=agent, sessions=policy, **_guessing(request)
        )
    except throttle.Throttled as exc:
        return _too_many(exc)
    except accounts.LoginFailed as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc
    response = JSONResponse(_user_json(result.user), headers=NO_STORE)
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        max_age=max(1, int((result.expires_at - datetime.now(UTC)).total_seconds())),
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
    await sessions.logout(conn, request.cookies.get(SESSION_COOKIE), source=source_address(request))
    get_availability(request).forget(request.cookies.get(SESSION_COOKIE))  # not even through an outage
    return _signed_out(request)


@router.post("/api/v1/auth/password", status_code=204)
async def change_password(body: PasswordBody, user: UserDep, request: Request, conn: ConnDep) -> Response:
    """Change your own password (required after a one-time password); every session of yours ends.

    A wrong current password counts as a failed login (429 + Retry-After once there are too many).
    """
    try:
        await sessions.change_own_password(conn, user.name, body.current, body.new, **_guessing(request))
    except throttle.Throttled as exc:
        return _too_many(exc)
    except accounts.LoginFailed as exc:
        raise ApiError(403, "forbidden", str(exc)) from exc
    except accounts.AuthError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    return _signed_out(request)


@router.get("/api/v1/me")
async def me(user: UserDep) -> dict[str, Any]:
    """The logged-in user and their role."""
    return _user_json(user)


@router.get("/api/v1/users")
async def users(admin: AdminDep, conn: ConnDep) -> dict[str, Any]:
    """Every user (admin)."""
    return {"users": [_user_json(u) for u in await accounts.list_users(conn)]}


@router.post("/api/v1/users", status_code=201)
async def add_user(body: NewUserBody, admin: AdminDep, request: Request, conn: ConnDep) -> JSONResponse:
    """Add a user (admin); a generated one-time password is in the answer, once."""
    try:
        password = await accounts.create_user(
            conn,
            body.name,
            body.role,
            body.password,
            actor=admin.name,
            source=source_address(request),
            display=body.display,
        )
    except accounts.AuthError as exc:
        raise _refused(exc) from exc
    answer: dict[str, Any] = {"name": accounts.normalise_name(body.name), "role": body.role, "display": body.display}
    if body.password is None:
        answer["password"] = password
    return JSONResponse(answer, status_code=201, headers=NO_STORE)


@router.post("/api/v1/users/{name}/disable")
async def disable_user(name: str, admin: AdminDep, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Disable a user and end their sessions (admin; not yourself)."""
    if name.lower() == admin.name:
        raise ApiError(409, "conflict", "you cannot disable yourself")
    try:
        await accounts.set_disabled(conn, name, True, actor=admin.name, source=source_address(request))
    except accounts.AuthError as exc:
        raise _refused(exc) from exc
    return {"name": name.lower(), "disabled": True}


@router.post("/api/v1/users/{name}/enable")
async def enable_user(name: str, admin: AdminDep, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Enable a disabled user (admin)."""
    try:
        await accounts.set_disabled(conn, name, False, actor=admin.name, source=source_address(request))
    except accounts.AuthError as exc:
        raise _refused(exc) from exc
    return {"name": name.lower(), "disabled": False}


@router.post("/api/v1/users/{name}/reset")
async def reset_password(name: str, admin: AdminDep, request: Request, conn: ConnDep) -> JSONResponse:
    """Give a user a new one-time password (admin); their sessions end."""
    try:
        password = await accounts.set_password(conn, name, actor=admin.name, source=source_address(request))
    except accounts.AuthError as exc:
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
    entries = await audit.recent(conn, limit=limit, before_id=before, action=action, actor=actor, target=target)
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

"""Every API error is JSON ``{"error": {"code", "message"}}`` with the right HTTP status."""

from __future__ import annotations

import logging
from datetime import datetime
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboards.availability import RETRY_AFTER_S, DatabaseUnavailable, is_unavailable
from dashboards.encoding import iso

logger = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}
# Driver errors that mean "the database is away" when one escapes a route that did not convert it.
DRIVER_UNAVAILABLE = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InterfaceError,
)


class ApiError(Exception):
    """An error answered as JSON with ``status`` and ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str) -> ApiError:
    """404 for a missing thing."""
    return ApiError(404, "not_found", f"{what} not found")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error."""
    return {"error": {"code": code, "message": message, **extra}}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return JSONResponse(
        error_body(CODES.get(exc.status_code, "error"), message),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
    first = details[0] if details else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
    return JSONResponse(error_body("validation_error", message, details=details), status_code=422)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot take (a NUL in text, a number beyond bigint): the client's mistake.
    logger.info("refused a value on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        error_body("bad_request", "a parameter holds a value the database cannot store"), status_code=400
    )


def unavailable_response(since: datetime | None = None) -> JSONResponse:
    """503 with Retry-After: the database is away (since ``since``, when known)."""
    return JSONResponse(
        error_body(
            "database_unavailable",
            "the database is unavailable; try again shortly",
            retry_after_s=RETRY_AFTER_S,
            since=iso(since),
        ),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"},
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DatabaseUnavailable)
    return unavailable_response(exc.since)


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_unavailable(exc):
        return await _internal_error(request, exc)
    availability = getattr(request.app.state, "availability", None)
    if availability is None:
        return unavailable_response()
    return unavailable_response(availability.unavailable(exc).since)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal", "internal server error"), status_code=500)


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(asyncpg.DataError, _data_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    for error in DRIVER_UNAVAILABLE:
        app.add_exception_handler(error, _driver_error)
    app.add_exception_handler(Exception, _internal_error)

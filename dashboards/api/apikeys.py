"""``/api/v1/apikeys``: the open data API keys for administrators (the admin page), beside ``ioc apikeys``.

A new key is in the answer once (only its SHA-256 is stored); every change is in the audit log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dashboards.api.deps import AdminDep, ConnDep, SettingsDep, source_address
from dashboards.api.errors import not_found
from dashboards.security import NO_STORE
from ioc import audit
from opendata.keys import HEADER, add_key, list_keys, revoke_key

router = APIRouter(prefix="/apikeys", tags=["open data API keys (admin)"])


class NewKeyBody(BaseModel):
    """Who the key is for, and its quotas (default: IOC_OPEN_KEY_RATE_PER_MINUTE and _ROWS_PER_DAY)."""

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    per_minute: int | None = Field(None, ge=1, le=1_000_000)
    rows_per_day: int | None = Field(None, ge=1, le=10_000_000_000)


@router.get("")
async def keys(admin: AdminDep, conn: ConnDep) -> dict[str, Any]:
    """Every key with its quotas and today's use (UTC day): requests and rows."""
    return {"keys": [dict(r) for r in await list_keys(conn)], "header": HEADER}


@router.post("", status_code=201)
async def add(
    body: NewKeyBody, admin: AdminDep, request: Request, conn: ConnDep, settings: SettingsDep
) -> JSONResponse:
    """Create a key; the whole key is in this answer only."""
    per_minute = body.per_minute or settings.open_key_rate_per_minute
    daily = body.rows_per_day or settings.open_key_rows_per_day
    name = body.name.strip()
    async with conn.transaction():
        key = await add_key(conn, name, per_minute, daily, f"web:{admin.name}")
        ident = key.split("_")[1]
        detail = {"name": name, "per_minute": per_minute, "rows_per_day": daily}
        await audit.record(conn, admin.name, "apikey.add", ident, "success", source_address(request), detail)
    answer = {"id": ident, "name": name, "key": key, "per_minute": per_minute, "rows_per_day": daily}
    return JSONResponse(answer, status_code=201, headers=NO_STORE)


@router.post("/{ident}/revoke")
async def revoke(ident: str, admin: AdminDep, request: Request, conn: ConnDep) -> dict[str, Any]:
    """Revoke a key (every server refuses it within about 5 seconds)."""
    async with conn.transaction():
        done = await revoke_key(conn, ident)
        outcome = "success" if done else "failure"
        await audit.record(conn, admin.name, "apikey.revoke", ident, outcome, source_address(request))
    if not done:
        raise not_found(f"active API key {ident!r}")
    return {"id": ident, "revoked": True}

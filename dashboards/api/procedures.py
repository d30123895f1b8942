"""``/api/v1/procedures``: the incident types' procedures in force (viewer) and new editions saved by admins.

An edition names the ``base_version`` it was edited from; another edition saved meanwhile is a 409
``conflict`` and nothing is written. A procedure that does not validate is a 422 naming each field and
what is wrong. Incidents already open keep the procedure they started with.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from dashboards.api.deps import AdminDep, ConnDep, SourceDep, get_settings
from dashboards.api.errors import ApiError, not_found
from incidents import editions
from incidents.errors import IncidentConflict, IncidentNotFound, InvalidInput
from incidents.procedures import Catalogue

router = APIRouter(tags=["incidents"])

Json = dict[str, Any]
TypeId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class EditionIn(BaseModel):
    """A new edition of a type's procedure: its steps and limits (names and grouping kept unless given)."""

    base_version: int = Field(ge=1, le=2**31 - 1)
    steps: list[dict[str, Any]] = Field(min_length=1, max_length=100)
    limits: dict[str, Any] = Field(default_factory=dict)
    name: dict[str, Any] | None = None
    grouping: dict[str, Any] | None = None


def catalogue(request: Request) -> Catalogue:
    """The application's procedure catalogue (made on first use from IOC_SOP_DIR)."""
    state = request.app.state
    if getattr(state, "procedures", None) is None:
        state.procedures = Catalogue(get_settings(request).sop_dir)
    return state.procedures  # type: ignore[no-any-return]


async def synced(request: Request, conn: asyncpg.Connection) -> Catalogue:
    """The catalogue with the files and the saved editions reloaded."""
    found = catalogue(request)
    await found.sync(conn)
    return found


@router.get("/procedures")
async def list_procedures(request: Request, conn: ConnDep) -> Json:
    """The incident types and their procedures in force (sop/*.yaml and editions saved here)."""
    return {"items": [p.snapshot() for _, p in sorted((await synced(request, conn)).procedures.items())]}


@router.get("/procedures/{incident_type}")
async def get_procedure(incident_type: TypeId, request: Request, conn: ConnDep) -> Json:
    """One type's procedure in force, with the editions saved in the browser (newest first)."""
    procedure = (await synced(request, conn)).procedures.get(incident_type)
    if procedure is None:
        raise not_found(f"incident type {incident_type}")
    return {**procedure.snapshot(), "editions": await editions.history(conn, incident_type)}


@router.put("/procedures/{incident_type}")
async def save_procedure(
    incident_type: TypeId, body: EditionIn, request: Request, conn: ConnDep, by: AdminDep, source: SourceDep
) -> Json:
    """Save a new edition (admin): validated, numbered after the one in force, audited (``procedure.edit``)."""
    found = await synced(request, conn)
    current = found.procedures.get(incident_type)
    doc: Json = {"steps": body.steps, "limits": body.limits}
    doc["name"] = body.name if body.name is not None else current.name.model_dump() if current else None
    doc["grouping"] = (
        body.grouping if body.grouping is not None else current.grouping.model_dump(mode="json") if current else {}
    )
    try:
        edition = await editions.save(conn, found, incident_type, body.base_version, doc, by.name, source)
    except IncidentNotFound as exc:
        raise not_found(f"incident type {incident_type}") from exc
    except IncidentConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    except InvalidInput as exc:
        raise ApiError(422, "invalid", str(exc)) from exc
    return {**edition.snapshot(), "editions": await editions.history(conn, incident_type)}

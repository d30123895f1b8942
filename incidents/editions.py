"""Procedure editions saved in the browser: validated, numbered after the edition in force, audited.

The file in ``sop/`` stays the seed; a saved edition is a row of ``procedure_versions`` and is in force while
its version is the highest of its type (``Catalogue.sync``). Incidents already open keep the copy they were
created with, so an edit only changes the checklists of incidents created after it.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from pydantic import ValidationError

from incidents.errors import IncidentConflict, IncidentNotFound, InvalidInput
from incidents.procedures import Catalogue, Procedure, problems
from ioc import audit

logger = logging.getLogger(__name__)


async def save(
    conn: asyncpg.Connection,
    catalogue: Catalogue,
    incident_type: str,
    base_version: int,
    doc: dict[str, Any],
    actor: str,
    source: str,
) -> Procedure:
    """Save ``doc`` (the procedure without type and version) as the next edition of ``incident_type``.

    ``base_version`` is the edition the editor started from: another edition saved meanwhile is a conflict,
    never overwritten. Every attempt is audited (``procedure.edit``).
    """
    await catalogue.sync(conn)
    current = catalogue.procedures.get(incident_type)
    detail: dict[str, Any] = {"type": incident_type, "base_version": base_version}
    try:
        if current is None:
            raise IncidentNotFound(f"no incident type {incident_type!r}")
        if current.version != base_version:
            raise IncidentConflict(
                f"procedure {incident_type} is now version {current.version} (you edited version {base_version}): "
                "reload it and make your change again"
            )
        try:
            edition = Procedure.model_validate({**doc, "type": incident_type, "version": current.version + 1})
        except ValidationError as exc:
            raise InvalidInput(problems(exc)) from exc
        saved = await conn.fetchval(
            "INSERT INTO procedure_versions (type, version, procedure, created_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING RETURNING version",
            incident_type,
            edition.version,
            edition.snapshot(),
            actor,
        )
        if saved is None:
            raise IncidentConflict(f"version {edition.version} of {incident_type} was just saved by someone else")
    except (IncidentNotFound, IncidentConflict, InvalidInput) as exc:
        await audit.record(
            conn, actor, "procedure.edit", incident_type, "failure", source, {**detail, "reason": str(exc)}
        )
        raise
    detail.update(version=edition.version, steps=[s.id for s in edition.steps])
    await audit.record(conn, actor, "procedure.edit", incident_type, "success", source, detail)
    logger.info("procedure %s version %d saved by %s", incident_type, edition.version, actor)
    await catalogue.sync(conn)
    return edition


async def history(conn: asyncpg.Connection, incident_type: str) -> list[dict[str, Any]]:
    """The editions of a type saved in the browser, newest first (who saved which version, when)."""
    rows = await conn.fetch(
        "SELECT version, created_at, created_by FROM procedure_versions WHERE type = $1 ORDER BY version DESC",
        incident_type,
    )
    return [dict(r) for r in rows]

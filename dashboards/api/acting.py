"""An operator acting on one incident: the change runs, its outcome is audited (success or why not), and a refusal
of the incident store becomes the API's answer (404, 403, 409 or 422)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Path

from dashboards.api.deps import ConnDep, OperatorDep, SourceDep
from dashboards.api.errors import ApiError, not_found
from incidents import queries, store
from ioc import audit
from ioc.accounts import User

Json = dict[str, Any]
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def refusal(exc: store.IncidentError, incident_id: int) -> ApiError:
    """The API's answer to a change the store refused."""
    if isinstance(exc, store.IncidentNotFound):
        return not_found(f"incident {incident_id}")
    if isinstance(exc, store.NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    if isinstance(exc, store.VersionConflict):
        return ApiError(409, "version_conflict", str(exc))
    if isinstance(exc, store.IncidentConflict):
        return ApiError(409, "conflict", str(exc))
    return ApiError(422, "invalid", str(exc))


@dataclass(frozen=True, slots=True)
class Acting:
    """An operator acting on one incident, from one address."""

    conn: asyncpg.Connection
    user: User
    source: str
    incident_id: int

    async def run(
        self,
        action: str,
        detail: Json,
        operation: Callable[..., Awaitable[Any]],
        *args: Any,
        noted: Callable[[Any], Json] | None = None,
    ) -> Any:
        """Run ``operation(conn, incident_id, *args)`` and audit it as ``action`` (``noted(result)`` joins the
        detail of a success); returns its result, or raises the refusal."""
        target = str(self.incident_id)
        try:
            result = await operation(self.conn, self.incident_id, *args)
        except store.IncidentError as exc:
            reason = "not found" if isinstance(exc, store.IncidentNotFound) else str(exc)
            failure = {**detail, "reason": reason}
            await audit.record(self.conn, self.user.name, action, target, "failure", self.source, failure)
            raise refusal(exc, self.incident_id) from exc
        success = {**detail, **(noted(result) if noted else {})}
        await audit.record(self.conn, self.user.name, action, target, "success", self.source, success)
        return result

    async def __call__(self, action: str, detail: Json, operation: Callable[..., Awaitable[Any]], *args: Any) -> Json:
        """``run`` the change, then answer with the incident as it now is."""
        await self.run(action, detail, operation, *args)
        return await queries.get(self.conn, self.incident_id)


def acting(incident_id: IncidentId, conn: ConnDep, by: OperatorDep, source: SourceDep) -> Acting:
    """Dependency of the incident actions (operator)."""
    return Acting(conn, by, source, incident_id)


Act = Annotated[Acting, Depends(acting)]

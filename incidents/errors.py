"""The incident errors: each message is meant for the operator (the API answers with it)."""

from __future__ import annotations

import asyncpg


class IncidentError(Exception):
    """Base of the incident errors; the message is meant for the operator."""


class IncidentNotFound(IncidentError, LookupError):
    """No incident has this id."""


class IncidentConflict(IncidentError):
    """The action is not allowed now (the state forbids it, or required steps are not done)."""


class VersionConflict(IncidentConflict):
    """Someone else changed the incident since the caller read it."""

    def __init__(self, incident_id: int, expected: int, row: asyncpg.Record) -> None:
        when = row["updated_at"].strftime("%H:%M:%S UTC")
        super().__init__(
            f"incident {incident_id} was changed by {row['updated_by']} at {when} (now version {row['version']}, "
            f"you had version {expected}): reload it and try again"
        )
        self.current = int(row["version"])


class NotAllowed(IncidentError, PermissionError):
    """The actor's role does not allow this (reassigning someone else's incident, overriding on it)."""


class InvalidInput(IncidentError, ValueError):
    """A value the incident cannot take (an unknown type, assignee or step)."""

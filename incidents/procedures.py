"""Incident types and their procedures (SOP): one versioned YAML file per type in ``sop/``.

A file names the type (Vietnamese and English), how alerts group into an incident of that type (which
alert rules, within how many metres and minutes), and the checklist operators follow. An incident copies
its type's procedure when it is created, so editing a file changes the incidents created afterwards and
never a checklist someone is working through; ``version`` says which edition an incident follows.

The catalogue reloads when a file changes; a file that fails validation is logged and its previous
edition stays in force (as the alert rules do). Admins may also save editions in the browser
(``incidents.editions``, table ``procedure_versions``): the files are the seed, and of a type's file and its
saved editions the highest version is in force.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ioc.documents import parse_yaml

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"warning": 1, "critical": 2}
ID = r"^[a-z][a-z0-9_]{0,63}$"


class Text(BaseModel):
    """A text in both languages of the centre."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vi: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


class Step(BaseModel):
    """One step of a checklist; ``when: critical`` limits it to incidents at the critical (danger) level."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID)
    text: Text
    required: bool = True
    when: Literal["any", "critical"] = "any"


class Grouping(BaseModel):
    """Alerts of ``rules`` within ``radius_m`` of an open incident of this type and ``window_min`` of its
    newest alert join it; otherwise they open a new one. No rules: only operators create this type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[str, ...] = ()
    radius_m: float = Field(500.0, gt=0, le=50_000)
    window_min: float = Field(30.0, gt=0, le=7 * 24 * 60)


class Limits(BaseModel):
    """Minutes from an incident's creation to be acknowledged (taken or assigned) and resolved, per severity;
    when one passes, the incident is escalated (once per limit). A severity left out has no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    acknowledge_min: dict[Literal["warning", "critical"], float] = {}
    resolve_min: dict[Literal["warning", "critical"], float] = {}

    @model_validator(mode="after")
    def _positive(self) -> Limits:
        for minutes in (*self.acknowledge_min.values(), *self.resolve_min.values()):
            if not 0 < minutes <= 7 * 24 * 60:
                raise ValueError(f"a time limit must be more than 0 and at most a week of minutes (got {minutes})")
        return self


class Procedure(BaseModel):
    """One incident type: its names, grouping rule, time limits and checklist (a file in ``sop/``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(pattern=ID)
    version: int = Field(ge=1)
    name: Text
    grouping: Grouping = Grouping()
    limits: Limits = Limits()
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_steps(self) -> Procedure:
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"procedure {self.type}: duplicate step ids: {', '.join(dupes)}")
        return self

    def snapshot(self) -> dict[str, Any]:
        """The procedure as an incident keeps it (JSON)."""
        return self.model_dump(mode="json")


def parse(text: str, source: str = "<text>") -> Procedure:
    """Validate one procedure file's text; raises ValueError naming ``source`` and the problem."""
    return parse_yaml(Procedure, text, source)


def applicable_steps(procedure: dict[str, Any], severity: str) -> list[dict[str, Any]]:
    """The steps of an incident's copied procedure that apply at ``severity``."""
    return [s for s in procedure.get("steps", []) if s.get("when", "any") == "any" or severity == "critical"]


def missing_required(procedure: dict[str, Any], severity: str, done: set[str]) -> list[str]:
    """Ids of required steps that apply at ``severity`` and are not in ``done``."""
    return [s["id"] for s in applicable_steps(procedure, severity) if s.get("required", True) and s["id"] not in done]


def overdue(
    procedure: dict[str, Any], severity: str, age_min: float, acknowledged: bool, resolved: bool
) -> list[tuple[str, float]]:
    """The limits (``acknowledge``, ``resolve``) an incident of this age and severity has passed, with their minutes."""
    limits = procedure.get("limits", {})
    out = []
    for name, done in (("acknowledge", acknowledged), ("resolve", resolved)):
        minutes = limits.get(f"{name}_min", {}).get(severity)
        if minutes is not None and not done and age_min > minutes:
            out.append((name, float(minutes)))
    return out


def problems(exc: ValidationError) -> str:
    """A validation error as one line an editor can act on: each field (``steps.2.text.en``) and what is wrong."""
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'procedure'}: {err['msg']}" for err in exc.errors()
    )


LATEST_EDITIONS = "SELECT DISTINCT ON (type) type, procedure FROM procedure_versions ORDER BY type, version DESC"


@dataclass
class Catalogue:
    """The procedures in force: ``directory/*.yaml`` (reloaded when a file changes) and, after ``sync``, the
    editions saved in the browser; of each type the highest version."""

    directory: Path
    procedures: dict[str, Procedure] = field(default_factory=dict)
    files: dict[str, Procedure] = field(default_factory=dict)
    edits: dict[str, Procedure] = field(default_factory=dict)
    _stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def _merge(self) -> None:
        merged = dict(self.files)
        for kind, edition in self.edits.items():
            if kind not in merged or edition.version > merged[kind].version:
                merged[kind] = edition
        self.procedures = merged

    async def sync(self, conn: asyncpg.Connection) -> None:
        """Reload changed files and the newest edition of each type saved in the browser."""
        self.refresh()
        edits = {}
        for row in await conn.fetch(LATEST_EDITIONS):
            try:
                edits[row["type"]] = Procedure.model_validate(row["procedure"])
            except ValidationError as exc:  # saved editions were validated: only a hand-edited row gets here
                logger.error("saved procedure edition of %s is invalid, ignored: %s", row["type"], problems(exc))
        self.edits = edits
        self._merge()

    def refresh(self) -> bool:
        """Reload changed files (an invalid one keeps its previous edition); True when anything changed."""
        try:
            paths = sorted(self.directory.glob("*.yaml"))
        except OSError as exc:
            logger.error("procedures folder %s cannot be read: %s", self.directory, exc)
            return False
        changed = False
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            if self._stamps.get(path) == stamp:
                continue
            self._stamps[path] = stamp
            try:
                procedure = parse(path.read_text(encoding="utf-8"), str(path))
            except (OSError, ValueError) as exc:
                logger.error("procedure file is invalid, keeping its previous edition: %s", exc)
                continue
            if procedure.type != path.stem:
                logger.error(
                    "procedure file %s declares type %r: the type must be the file's name", path, procedure.type
                )
                continue
            self.files[procedure.type] = procedure
            changed = True
            logger.info(
                "loaded procedure %s version %d (%d steps)", procedure.type, procedure.version, len(procedure.steps)
            )
        if changed:
            self._merge()
        return changed

    def get(self, incident_type: str) -> Procedure | None:
        """The procedure of a type, if there is one."""
        self.refresh()
        return self.procedures.get(incident_type)

    def for_rule(self, rule: str) -> Procedure | None:
        """The incident type whose grouping takes alerts of ``rule`` (the first by name when several do)."""
        return next((p for _, p in sorted(self.procedures.items()) if rule in p.grouping.rules), None)

    def types(self) -> list[Procedure]:
        """Every known type, by name."""
        self.refresh()
        return [p for _, p in sorted(self.procedures.items())]

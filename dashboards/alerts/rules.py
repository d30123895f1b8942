"""Alert rules: a versioned YAML file, validated on load and reloaded when its mtime changes.

An invalid file never stops the engine: the previous rules stay in force and the error is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ioc.documents import parse_yaml

logger = logging.getLogger(__name__)

RuleType = Literal["threshold", "rate_of_rise", "event", "device_status", "air_quality", "air_suspect", "forecast"]


class Rule(BaseModel):
    """One rule; which fields matter depends on ``type`` (see dashboards/rules.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    type: RuleType
    title: str = "{rule}: {name}"
    kind: str | None = None
    enabled: bool = True
    for_s: float = Field(0.0, ge=0)
    clear_delay_s: float = Field(60.0, ge=0)
    # threshold and rate_of_rise
    metric: str | None = None
    direction: Literal["above", "below"] = "above"
    warning: float | None = None
    critical: float | None = None
    warning_from: str | None = None  # device metadata key overriding ``warning``
    critical_from: str | None = None
    hysteresis: float = Field(0.0, ge=0)
    window_s: float = Field(600.0, gt=0)  # rate_of_rise: rise over this window; event: look-back
    # event
    event_types: tuple[str, ...] = ()
    min_confidence: float = Field(0.0, ge=0, le=1)
    severity: Literal["warning", "critical"] = "warning"
    critical_severities: tuple[str, ...] = ("critical",)
    # device_status
    statuses: tuple[Literal["offline", "stale", "unknown"], ...] = ("offline", "stale")
    # forecast: the stored forecasts reach warning/critical (as threshold) within ``within_min`` minutes
    within_min: int = Field(60, ge=1, le=120)
    min_probability: float = Field(0.5, ge=0, le=1)
    observed_rule: str | None = None  # the rule whose alert the reading opens: once it is active, this one stands down

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        if self.type in ("threshold", "rate_of_rise", "forecast"):
            if not self.metric:
                raise ValueError(f"rule {self.id}: {self.type} needs a metric")
            if self.warning is None and self.critical is None:
                raise ValueError(f"rule {self.id}: set warning and/or critical")
        if self.type == "air_quality" and self.warning is None and self.critical is None:
            raise ValueError(f"rule {self.id}: set warning and/or critical (VN_AQI values)")
        if self.type == "event" and not self.event_types:
            raise ValueError(f"rule {self.id}: event rules need event_types")
        return self


class RuleFile(BaseModel):
    """The rules file: ``version: 1``, engine timing, and the rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    evaluate_every_s: float = Field(5.0, gt=0, le=300)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RuleFile:
        ids = [r.id for r in self.rules]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate rule ids: {', '.join(sorted(dupes))}")
        return self


def parse(text: str) -> RuleFile:
    """Validate the text of a rules file; raises ValueError with a readable message."""
    return parse_yaml(RuleFile, text)


class RuleBook:
    """The rules in force, reloaded from ``path`` whenever its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = RuleFile(version=1)
        self._stamp: tuple[int, int] | None = None

    def refresh(self) -> bool:
        """Reload if the file changed; True when new rules were taken."""
        try:
            st = self.path.stat()
        except OSError as exc:
            if self._stamp != (0, 0):
                logger.error(
                    "alert rules %s cannot be read (%s): keeping %d rules",
                    self.path,
                    exc,
                    len(self.current.rules),
                )
                self._stamp = (0, 0)
            return False
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            loaded = parse(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.error(
                "alert rules %s are invalid, keeping the previous %d rules: %s",
                self.path,
                len(self.current.rules),
                exc,
            )
            return False
        self.current = loaded
        logger.info("loaded %d alert rules from %s", len(loaded.rules), self.path)
        return True

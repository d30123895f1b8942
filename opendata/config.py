"""``open-data.yaml``: which kinds, metrics and devices are public, at what resolution and location precision."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ioc.errors import ConfigError
from ioc.kinds import KindSpec

logger = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("open-data.yaml")


class KindPolicy(BaseModel):
    """What one kind publishes: its metrics, every reading (raw, plus hourly aggregates as Datastreams of their
    own) or one hourly statistic only (hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: tuple[str, ...] = Field(min_length=1)
    resolution: Literal["raw", "hour"] = "raw"
    statistic: Literal["mean", "min", "max", "sum"] = "mean"  # of an hour-resolution kind
    hourly: tuple[Literal["mean", "min", "max", "sum"], ...] = ("mean", "min", "max")  # extra streams of raw kinds


class OpenDataConfig(BaseModel):
    """The whole policy; anything not named here is not public."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    licence: str = "CC-BY-4.0"
    kinds: dict[str, KindPolicy] = Field(default_factory=dict)
    withheld_devices: frozenset[str] = frozenset()
    location_decimals: dict[str, int] = Field(default_factory=lambda: {"default": 4})

    @model_validator(mode="after")
    def _decimals(self) -> OpenDataConfig:
        for kind, places in self.location_decimals.items():
            if not 0 <= places <= 6:
                raise ValueError(f"location_decimals.{kind} must be 0 to 6 (got {places})")
        return self

    def decimals(self, kind: str) -> int:
        """Decimal places of the coordinates published for devices of ``kind``."""
        return self.location_decimals.get(kind, self.location_decimals.get("default", 4))

    def check_kinds(self, kinds: dict[str, KindSpec]) -> None:
        """Raise ConfigError when the policy names a kind or metric the kind registry does not know."""
        for kind, policy in self.kinds.items():
            if kind not in kinds:
                raise ConfigError(f"open data: unknown kind {kind!r} (known: {', '.join(sorted(kinds))})")
            unknown = [m for m in policy.metrics if m not in kinds[kind].metrics]
            if unknown:
                raise ConfigError(f"open data: kind {kind!r} has no metric {', '.join(unknown)}")
        for kind in self.location_decimals:
            if kind != "default" and kind not in kinds:
                raise ConfigError(f"open data: location_decimals names unknown kind {kind!r}")


def load_config(path: Path | None, kinds: dict[str, KindSpec]) -> OpenDataConfig:
    """Read and validate the policy file (default: the one beside this module); ConfigError names the problem."""
    path = path or DEFAULT_FILE
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = OpenDataConfig.model_validate(doc)
    except OSError as exc:
        raise ConfigError(f"open data: cannot read {path}: {exc}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"open data: {path} is invalid: {exc}") from exc
    config.check_kinds(kinds)
    logger.info("open data: %d public kinds from %s", len(config.kinds), path)
    return config

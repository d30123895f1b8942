"""``open-data.yaml``: which kinds, metrics and devices are public, at what resolution and location precision."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ioc.errors import ConfigError
from ioc.kinds import KindSpec

logger = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("open-data.yaml")
# SPDX identifiers of the open licences the catalogue can name, with their documents.
LICENCES = {
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
}
Licence = Literal["CC-BY-4.0", "CC0-1.0", "ODbL-1.0"]
# The EU data-theme vocabulary's codes (http://publications.europa.eu/resource/authority/data-theme).
Theme = Literal["AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "OP_DATPRO", "REGI", "SOCI",
                "TECH", "TRAN"]  # fmt: skip


class KindPolicy(BaseModel):
    """What one kind publishes: its metrics, every reading (raw, plus hourly aggregates as Datastreams of their
    own) or one hourly statistic only (hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: tuple[str, ...] = Field(min_length=1)
    resolution: Literal["raw", "hour"] = "raw"
    statistic: Literal["mean", "min", "max", "sum"] = "mean"  # of an hour-resolution kind
    hourly: tuple[Literal["mean", "min", "max", "sum"], ...] = ("mean", "min", "max")  # extra streams of raw kinds
    theme: Theme = "ENVI"  # the catalogue's data theme (EU data-theme vocabulary)


class Publisher(BaseModel):
    """Who publishes the data (the catalogue's dct:publisher and contact point)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: dict[Literal["vi", "en"], str] = Field(min_length=1)
    homepage: str = Field(pattern=r"^https?://")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")


class Catalogue(BaseModel):
    """The DCAT-AP catalogue's own description (opendata/catalog.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: dict[Literal["vi", "en"], str] = Field(min_length=1)
    description: dict[Literal["vi", "en"], str] = Field(min_length=1)
    publisher: Publisher
    place: dict[Literal["vi", "en"], str] = Field(min_length=1)  # the area the data covers
    issued: date


class OpenDataConfig(BaseModel):
    """The whole policy; anything not named here is not public."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    licence: Licence = "CC-BY-4.0"
    catalogue: Catalogue
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

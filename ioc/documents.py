"""YAML documents (rules, procedures) read into their pydantic models, with one readable error."""

from __future__ import annotations

from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parse_yaml(model: type[M], text: str, source: str | None = None) -> M:
    """``text`` as YAML validated by ``model``; ValueError (prefixed ``source: `` when given) if it is neither."""
    prefix = f"{source}: " if source else ""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{prefix}not valid YAML: {exc}") from exc
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ValueError(f"{prefix}{exc}") from exc

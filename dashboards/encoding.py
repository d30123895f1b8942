"""JSON that browsers can always parse: UTC ISO times with ``Z`` and no NaN or infinities."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def as_utc(value: datetime | None) -> datetime | None:
    """A time in UTC; a time without an offset is read as UTC (the API's convention)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """A datetime as ISO 8601 UTC with a ``Z`` suffix (None stays None)."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # what asyncpg returns for timestamptz: the common case, made cheap
        return value.isoformat().replace("+00:00", "Z")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def number(value: Any) -> float | int | None:
    """A finite number or None (NaN and infinities become None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    f = float(value)
    return f if math.isfinite(f) else None


def jsonable(value: Any) -> Any:
    """Recursively convert ``value`` to plain JSON types (datetimes to ISO UTC, NaN to None)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | Decimal):
        return number(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def dumps(value: Any) -> str:
    """Serialise to compact JSON text; refuses NaN after cleaning, so a bug cannot reach a browser.

    Most values are JSON-ready already (the loaders build them so): they are encoded directly, and
    only a value the encoder refuses (a datetime, a Decimal, a NaN) takes the cleaning walk.
    """
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return json.dumps(jsonable(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))

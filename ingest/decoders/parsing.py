"""Shared parsing for every decoder: size limits, UTF-8, strict JSON, numbers, timestamps, safe details."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ioc.errors import PayloadError
from ioc.reasons import Reason
from ioc.settings import Settings

logger = logging.getLogger(__name__)

_DETAIL_MAX = 80
_BOM = b"\xef\xbb\xbf"
# Epoch seconds reach 1e11 in the year 5138; anything larger is almost surely milliseconds.
_MAX_EPOCH_S = 1e11
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?\Z")


def _default(name: str) -> int:
    value = Settings.model_fields[name].default
    assert isinstance(value, int)
    return value


@dataclass(frozen=True, slots=True)
class Limits:
    """Size and shape limits checked before or while parsing; defaults equal the settings' defaults."""

    max_payload_bytes: int = _default("ingest_max_payload_bytes")
    max_snapshot_bytes: int = _default("ingest_max_snapshot_bytes")
    max_json_depth: int = _default("ingest_max_json_depth")

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits configured by ``IOC_INGEST_MAX_*``."""
        return cls(
            settings.ingest_max_payload_bytes,
            settings.ingest_max_snapshot_bytes,
            settings.ingest_max_json_depth,
        )


DEFAULT_LIMITS = Limits()


def show(value: object) -> str:
    """A short, escaped rendering of untrusted input for an error detail (at most ~80 characters)."""
    if isinstance(value, str | bytes):
        clipped = value[:_DETAIL_MAX]
        return repr(clipped) + ("..." if len(value) > _DETAIL_MAX else "")
    text = repr(value)
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 3] + "..."


def utf8(payload: bytes) -> str:
    """Decode a text payload: strict UTF-8, no byte order mark, no NUL bytes."""
    if b"\x00" in payload:
        raise PayloadError(Reason.BAD_ENCODING, f"NUL byte at offset {payload.index(0)}")
    if payload.startswith(_BOM):
        raise PayloadError(Reason.BAD_ENCODING, "UTF-8 byte order mark not allowed")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(Reason.BAD_ENCODING, f"not UTF-8 at byte {exc.start}") from None


def _reject_constant(name: str) -> Any:
    raise PayloadError(Reason.NON_FINITE, f"{name} is not a number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise PayloadError(Reason.DUPLICATE_KEY, f"key {show(key)} appears twice")
            seen.add(key)
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_reject_constant)


def _too_deep(doc: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if type(node) is dict else node
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False


_NOT_TAKEN = object()


def _fast_json(payload: bytes) -> Any:
    """orjson's parse of ``payload`` when it is provably what ``_JSON`` gives (but for integers), else _NOT_TAKEN.

    orjson is as strict as ``_JSON`` (UTF-8, no BOM, no NaN, no control characters) but keeps the last of
    duplicate keys. Without a backslash in the payload every ``"`` delimits a string, so re-encoding the
    document has as many ``"`` as the payload exactly when no entry was dropped: no duplicate key. Anything
    else (escapes, a parse error, a duplicate) goes to ``_JSON``, which also words the error. orjson reads
    an integer beyond 64 bits as a float: only callers that take every number as a float use this.
    """
    if b"\\" in payload:
        return _NOT_TAKEN
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _NOT_TAKEN
    if orjson.dumps(doc).count(b'"') != payload.count(b'"'):
        return _NOT_TAKEN
    return doc


def load_json(payload: bytes, limits: Limits, *, floats: bool = False) -> Any:
    """Parse JSON strictly: UTF-8, no duplicate keys, no NaN/Infinity, nesting within the limit.

    ``floats``: the caller reads every number as a float (telemetry), so the faster orjson may parse it.
    """
    doc = _fast_json(payload) if floats else _NOT_TAKEN
    if doc is _NOT_TAKEN:
        text = utf8(payload)
        try:
            doc = _JSON.decode(text)
        except json.JSONDecodeError as exc:
            raise PayloadError(Reason.BAD_JSON, f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise PayloadError(Reason.TOO_DEEP, f"nesting deeper than {limits.max_json_depth}") from None
        except ValueError as exc:  # e.g. an integer literal longer than 4300 digits
            raise PayloadError(Reason.BAD_JSON, show(str(exc))) from None
    return _within_depth(doc, payload, limits)


def _within_depth(doc: Any, payload: bytes, limits: Limits) -> Any:
    """``doc`` when it nests no deeper than the limit, else PayloadError ``too_deep``."""
    # Cheap upper bound first: a document cannot nest deeper than its count of brackets.
    if type(doc) in (dict, list) and payload.count(b"{") + payload.count(b"[") > limits.max_json_depth:
        if _too_deep(doc, limits.max_json_depth):
            raise PayloadError(Reason.TOO_DEEP, f"nesting deeper than {limits.max_json_depth}")
    return doc


def kind_of(value: object) -> str:
    """The JSON name of a value's type, for error details."""
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def field(obj: dict[str, Any], key: str, where: str = "") -> Any:
    """``obj[key]``, or bad_schema naming the missing field."""
    try:
        return obj[key]
    except KeyError:
        raise PayloadError(Reason.BAD_SCHEMA, f"missing field {where}{key}") from None


def mapping(value: Any, name: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, else bad_schema."""
    if type(value) is not dict:
        raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be an object, got {kind_of(value)}")
    return value


def text(value: Any, name: str) -> str:
    """``value`` when it is a string, else bad_schema."""
    if type(value) is not str:
        raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be a string, got {kind_of(value)}")
    return value


def number(value: Any, name: str) -> float:
    """A finite float from a JSON number; booleans, strings and null are bad_schema."""
    kind = type(value)
    if kind is float:
        if value - value != 0.0:  # inf - inf and nan - nan are nan
            raise PayloadError(Reason.NON_FINITE, f"{name} is not finite")
        return value  # type: ignore[no-any-return]
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise PayloadError(Reason.NON_FINITE, f"{name} is too large") from None
    raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be a number, got {kind_of(value)}")


def integer(value: Any, name: str) -> int:
    """An int from a JSON integer (or an integral float such as 3.0); anything else is bad_schema."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be an integer, got {show(value)}")


def epoch(value: float, name: str) -> datetime:
    """A UTC datetime from seconds since the Unix epoch."""
    if value - value != 0.0:
        raise PayloadError(Reason.NON_FINITE, f"{name} is not finite")
    if value > _MAX_EPOCH_S:
        raise PayloadError(Reason.BAD_SCHEMA, f"{name} {value!r} looks like milliseconds; send seconds since the epoch")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(Reason.TIMESTAMP_OUT_OF_WINDOW, f"{name} {value!r} is not a representable time") from None


def timestamp(value: Any, name: str) -> datetime:
    """A UTC datetime from an RFC 3339 string with offset or from epoch seconds (int or float)."""
    kind = type(value)
    if kind is str:
        match = _RFC3339.match(value)
        if match is None:
            raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be RFC 3339 or epoch seconds, got {show(value)}")
        if match["offset"] is None:
            raise PayloadError(Reason.BAD_SCHEMA, f"{name} needs a UTC offset (e.g. Z), got {show(value)}")
        try:
            parsed = datetime.fromisoformat(value.upper())  # 3.11 refuses a lowercase t or z
        except ValueError:
            raise PayloadError(Reason.BAD_SCHEMA, f"{name} is not a valid date/time: {show(value)}") from None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise PayloadError(Reason.TIMESTAMP_OUT_OF_WINDOW, f"{name} {show(value)} is out of range") from None
    if kind is int or kind is float:
        return epoch(number(value, name), name)
    raise PayloadError(Reason.BAD_SCHEMA, f"{name} must be RFC 3339 or epoch seconds, got {kind_of(value)}")

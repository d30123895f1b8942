"""The query options of a SensorThings request ($filter, $expand, ...), parsed and checked before any SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from opendata.errors import QueryError
from opendata.filters import split_outside

DEFAULT_TOP = 100
MAX_TOP = 10_000  # as FROST-Server's default maxTop
KNOWN = {"$filter", "$orderby", "$top", "$skip", "$count", "$select", "$expand", "$resultFormat"}
_EXPAND_ITEM = re.compile(r"^\s*(?P<path>[A-Za-z/]+)\s*(?:\((?P<options>.*)\))?\s*$", re.S)


@dataclass
class Options:
    """The options of one collection (the request's, or one ``$expand`` item's)."""

    filter: str | None = None
    orderby: str | None = None
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    select: list[str] | None = None
    expand: list[Expand] = field(default_factory=list)
    result_format: str | None = None


@dataclass
class Expand:
    """One ``$expand`` item: a navigation property and its own options."""

    name: str
    options: Options


def parse_options(pairs: dict[str, str], nested: bool = False) -> Options:
    """Options from ``{"$top": "5", ...}``; QueryError names the first bad one."""
    opts = Options()
    for key, value in pairs.items():
        if key not in KNOWN:
            raise QueryError(f"unknown query option {key!r} (known: {', '.join(sorted(KNOWN))})")
        if key == "$filter":
            opts.filter = _nonempty(key, value)
        elif key == "$orderby":
            opts.orderby = _nonempty(key, value)
        elif key == "$top":
            opts.top = _integer(key, value, MAX_TOP)
        elif key == "$skip":
            opts.skip = _integer(key, value, None)
        elif key == "$count":
            if value not in {"true", "false"}:
                raise QueryError(f"$count is true or false (got {value!r})")
            opts.count = value == "true"
        elif key == "$select":
            opts.select = [s.strip() for s in _nonempty(key, value).split(",")]
        elif key == "$expand":
            opts.expand = parse_expand(_nonempty(key, value))
        elif key == "$resultFormat":
            if value != "dataArray" or nested:
                raise QueryError(f"$resultFormat is dataArray, on Observations only (got {value!r})")
            opts.result_format = value
    return opts


def parse_expand(text: str) -> list[Expand]:
    """``Datastreams($top=1;$expand=Observations),Locations`` or ``Datastreams/Observations``."""
    items: list[Expand] = []
    for part in split_outside(text, ","):
        m = _EXPAND_ITEM.match(part)
        if not m:
            raise QueryError(f"cannot read $expand item {part.strip()!r}")
        names = [n for n in m.group("path").split("/") if n]
        if not names:
            raise QueryError(f"empty $expand item in {text!r}")
        inner = _nested(m.group("options")) if m.group("options") is not None else Options()
        for name in reversed(names[1:]):
            inner = Options(expand=[Expand(name, inner)])
        items.append(Expand(names[0], inner))
    return items


def _nested(text: str) -> Options:
    pairs: dict[str, str] = {}
    for item in split_outside(text, ";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise QueryError(f"cannot read $expand option {item.strip()!r}: expected $name=value")
        pairs[key.strip()] = value.strip()
    return parse_options(pairs, nested=True)


def _nonempty(key: str, value: str) -> str:
    if not value.strip():
        raise QueryError(f"{key} is empty")
    return value


def _integer(key: str, value: str, maximum: int | None) -> int:
    if not value.isdigit():
        raise QueryError(f"{key} takes a non-negative integer (got {value!r})")
    number = int(value)
    if maximum is not None and number > maximum:
        raise QueryError(f"{key} is at most {maximum} (got {number}); page with @iot.nextLink")
    return number

"""The ``$filter`` functions (string, date and time, maths, geometry) as SQLAlchemy Core, and the geometries they
take: ``POINT``/``POLYGON`` literals and entities' location columns."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Float, Integer, String, Text, Time, bindparam, cast, extract, func, literal, not_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.elements import BindParameter

from opendata.errors import QueryError

_POINT = re.compile(r"^\s*POINT\s*\(\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\)\s*$", re.I)
_POLYGON = re.compile(r"^\s*POLYGON\s*\(\s*\((?P<ring>[^()]*)\)\s*\)\s*$", re.I)


class Geometry:
    """A point or polygon: a literal (WKT) or an entity's location columns."""

    def __init__(self, point: tuple[Any, Any] | None = None, ring: list[tuple[float, float]] | None = None) -> None:
        self.point = point
        self.ring = ring

    @classmethod
    def from_wkt(cls, wkt: str) -> Geometry:
        """Parse POINT(x y) or POLYGON((x y, ...)) (one ring); QueryError for other geometries."""
        if m := _POINT.match(wkt):
            return cls(point=(float(m.group(1)), float(m.group(2))))
        if m := _POLYGON.match(wkt):
            try:
                ring = [(float(x), float(y)) for x, y in (p.split() for p in m.group("ring").split(","))]
            except ValueError as exc:
                raise QueryError(f"cannot read polygon {wkt!r}: each vertex is 'x y'") from exc
            if len(ring) < 3:
                raise QueryError(f"a polygon needs at least 3 vertices: {wkt!r}")
            return cls(ring=ring)
        raise QueryError(f"unsupported geometry {wkt!r}: only POINT(x y) and POLYGON((x y, ...)) are")

    def pg_point(self) -> ColumnElement[Any]:
        """A PostgreSQL point."""
        assert self.point is not None
        x, y = (v if isinstance(v, ColumnElement) else literal(v, Float) for v in self.point)
        return func.point(x, y)

    def pg_polygon(self) -> ColumnElement[Any]:
        """A PostgreSQL polygon: its text form bound as a parameter, read by polygon's input function."""
        assert self.ring is not None
        text = "(" + ",".join(f"({x!r},{y!r})" for x, y in self.ring) + ")"
        return func.polygon(cast(bindparam(None, text, String), Text))


def numeric(value: Any) -> Any:
    """JSON text paths take part in arithmetic as numbers."""
    if isinstance(value, Geometry):
        raise QueryError("geometries take no part in arithmetic")
    if isinstance(value.type, (String, Text)) and not isinstance(value.type, JSONB):
        return cast(value, Float)
    return value


def _text(value: Any) -> Any:
    if isinstance(value, Geometry):
        raise QueryError("a geometry is not text")
    return cast(value, Text) if not isinstance(value.type, (String, Text)) else value


def _like(value: Any, pattern: Any, how: str) -> Any:
    """contains/startswith/endswith; a literal pattern has its % and _ escaped."""
    if isinstance(pattern, BindParameter) and isinstance(pattern.value, str):
        return getattr(_text(value), how)(pattern.value, autoescape=True)
    return getattr(_text(value), how)(_text(pattern))


def _utc_part(field: str) -> Any:
    def part(value: Any) -> Any:
        return cast(func.floor(extract(field, func.timezone("UTC", value))), Integer)

    return part


def _geom(value: Any) -> Geometry:
    if not isinstance(value, Geometry):
        raise QueryError("geo functions take a location (property) and a geography'...' literal")
    return value


def _distance(a: Any, b: Any) -> Any:
    """Planar distance in degrees between two points (as FROST-Server's on geometry)."""
    ga, gb = _geom(a), _geom(b)
    if ga.point is None or gb.point is None:
        raise QueryError("geo.distance is defined here for two points")
    return ga.pg_point().op("<->", return_type=Float)(gb.pg_point())


def _intersects(a: Any, b: Any) -> Any:
    ga, gb = _geom(a), _geom(b)
    if ga.point is not None and gb.point is not None:
        return ga.pg_point().op("~=", return_type=Boolean)(gb.pg_point())
    if ga.point is not None and gb.ring is not None:
        return ga.pg_point().op("<@", return_type=Boolean)(gb.pg_polygon())
    if gb.point is not None and ga.ring is not None:
        return gb.pg_point().op("<@", return_type=Boolean)(ga.pg_polygon())
    return ga.pg_polygon().op("&&", return_type=Boolean)(gb.pg_polygon())


def _within(a: Any, b: Any) -> Any:
    ga, gb = _geom(a), _geom(b)
    if gb.ring is not None and ga.point is not None:
        return ga.pg_point().op("<@", return_type=Boolean)(gb.pg_polygon())
    if gb.point is not None and ga.point is not None:
        return ga.pg_point().op("~=", return_type=Boolean)(gb.pg_point())
    raise QueryError("st_within(a, b) is defined here for a point within a polygon or point")


FUNCTIONS: dict[str, Any] = {
    "contains": lambda s, sub: _like(s, sub, "contains"),
    "substringof": lambda sub, s: _like(s, sub, "contains"),
    "startswith": lambda s, p: _like(s, p, "startswith"),
    "endswith": lambda s, p: _like(s, p, "endswith"),
    "length": lambda s: func.char_length(_text(s)),
    "indexof": lambda s, sub: func.strpos(_text(s), sub) - 1,
    "substring": lambda s, start, n=None: (
        func.substr(_text(s), start + 1) if n is None else func.substr(_text(s), start + 1, n)
    ),
    "tolower": lambda s: func.lower(_text(s)),
    "toupper": lambda s: func.upper(_text(s)),
    "trim": lambda s: func.trim(_text(s)),
    "concat": lambda a, b: func.concat(_text(a), _text(b)),
    "year": _utc_part("year"),
    "month": _utc_part("month"),
    "day": _utc_part("day"),
    "hour": _utc_part("hour"),
    "minute": _utc_part("minute"),
    "second": _utc_part("second"),
    "fractionalseconds": lambda v: extract("microseconds", v) / 1e6 - func.floor(extract("second", v)),
    "date": lambda v: cast(func.timezone("UTC", v), Date),
    "time": lambda v: cast(func.timezone("UTC", v), Time),
    "totaloffsetminutes": lambda v: literal(0, Integer),
    "now": lambda: func.now(),
    "mindatetime": lambda: literal(datetime(1, 1, 1, tzinfo=UTC)),
    "maxdatetime": lambda: literal(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    "round": lambda v: func.round(numeric(v)),
    "floor": lambda v: func.floor(numeric(v)),
    "ceiling": lambda v: func.ceil(numeric(v)),
    "geo.distance": _distance,
    "geo.intersects": _intersects,
    "st_intersects": _intersects,
    "st_disjoint": lambda a, b: not_(_intersects(a, b)),
    "st_equals": lambda a, b: _within(a, b) if _geom(b).point is not None else literal(False),
    "st_within": _within,
    "st_contains": lambda a, b: _within(b, a),
}

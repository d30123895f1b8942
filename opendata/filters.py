"""``$filter`` and ``$orderby`` expressions: parsed by odata-query's grammar, turned into SQLAlchemy Core.

Paths resolve against the entity views of ``opendata.entities`` (``Datastream/Thing/name`` becomes a
correlated subquery through the views), literals become bound parameters: no SQL is built from strings.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from odata_query import ast, exceptions
from odata_query.grammar import ODataLexer, ODataParser
from sqlalchemy import (
    Boolean,
    Date,
    Float,
    Integer,
    Interval,
    Numeric,
    String,
    Text,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import ColumnElement

from opendata.entities import EntitySet
from opendata.errors import QueryError
from opendata.functions import FUNCTIONS, Geometry, numeric

# SensorThings functions beyond OData's, with their argument counts.
STA_FUNCTIONS = {
    "substringof": 2,
    "st_within": 2,
    "st_intersects": 2,
    "st_equals": 2,
    "st_disjoint": 2,
    "st_contains": 2,
}


def _parser() -> ODataParser:
    """odata-query's parser (pinned: 0.10.0), also knowing the SensorThings functions (st_within, substringof...).

    sly builds a parser class from its rules, so a subclass cannot override one method; this instance's
    ``_function_call`` (the hook every call rule goes through) is replaced instead. tests/test_opendata_filters.py
    parses each STA function, so an upgrade that renames the hook fails there.
    """
    parser = ODataParser()
    library_call = parser._function_call

    def function_call(func_id: ast.Identifier, args: list[ast._Node]) -> ast.Call:
        name = func_id.full_name()
        if name in STA_FUNCTIONS:
            if len(args) != STA_FUNCTIONS[name]:
                raise exceptions.ArgumentCountException(name, STA_FUNCTIONS[name], STA_FUNCTIONS[name], len(args))
            return ast.Call(func_id, args)
        return library_call(func_id, args)

    parser._function_call = function_call  # type: ignore[method-assign,assignment]
    return parser


def parse(text: str) -> ast._Node:
    """The syntax tree of an OData expression; QueryError on a syntax error or an unknown function."""
    try:
        return _parser().parse(ODataLexer().tokenize(text))
    except exceptions.ODataException as exc:
        raise QueryError(f"cannot parse {text!r}: {exc}") from exc


class Compiler:
    """Turns one entity set's expressions into Core (``sets`` resolves navigation paths)."""

    def __init__(
        self, sets: dict[str, EntitySet], entity: EntitySet, variable: str = "", outer: Compiler | None = None
    ) -> None:
        self.sets = sets
        self.entity = entity
        self.variable = variable  # inside a lambda: its variable names ``entity``; other paths are ``outer``'s
        self.outer = outer

    # -- entry points
    def where(self, text: str) -> ColumnElement[bool]:
        """The WHERE clause of ``$filter=text``."""
        value = self.expr(parse(text))
        if isinstance(value, Geometry):
            raise QueryError("a $filter must be true or false, not a geometry")
        return value

    def order(self, text: str) -> list[ColumnElement[Any]]:
        """The ORDER BY of ``$orderby=text`` (comma-separated ``expr [asc|desc]``)."""
        clauses = []
        for part in _split(text, ","):
            m = re.match(r"^(.*?)(?:\s+(asc|desc))?\s*$", part.strip(), re.I | re.S)
            assert m is not None
            if not m.group(1):
                raise QueryError(f"empty $orderby item in {text!r}")
            expr = self.expr(parse(m.group(1)))
            if isinstance(expr, Geometry):
                raise QueryError(f"cannot order by a geometry: {m.group(1)!r}")
            desc = (m.group(2) or "asc").lower() == "desc"
            clauses.append(expr.desc().nulls_last() if desc else expr.asc().nulls_first())
        return clauses

    # -- the tree
    def expr(self, node: ast._Node) -> Any:
        """Core for one node (a Geometry for geometry values)."""
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise QueryError(f"unsupported expression: {type(node).__name__}")
        return method(node)

    def _Identifier(self, node: ast.Identifier) -> Any:
        return self._scoped([node.name] if not node.namespace else [*node.namespace, node.name])

    def _Attribute(self, node: ast.Attribute) -> Any:
        return self._scoped(_flatten(node))

    def _scoped(self, parts: list[str]) -> Any:
        """A path in this scope: inside a lambda, ``d/...`` is the lambda's entity and the rest the outer one's."""
        if not self.variable:
            return self._path(self.entity, parts)
        if parts[0] == self.variable:
            if len(parts) == 1:
                raise QueryError(f"name a property of {self.variable} ({self.variable}/...)")
            return self._path(self.entity, parts[1:])
        assert self.outer is not None
        return self.outer._scoped(parts)

    def _CollectionLambda(self, node: ast.CollectionLambda) -> Any:
        """``Datastreams/any(d: d/... )`` and ``all``: EXISTS over the collection's view, correlated to this row."""
        parts = _flatten(node.owner)
        if self.variable and parts[0] == self.variable:
            parts, scope = parts[1:], self
        elif self.outer is not None:
            scope = self.outer
        else:
            scope = self
        if len(parts) != 1 or parts[0] not in scope.entity.relations or not scope.entity.relations[parts[0]].many:
            known = ", ".join(n for n, r in scope.entity.relations.items() if r.many)
            raise QueryError(f"any() and all() apply to a collection of {scope.entity.name} ({known})")
        relation = scope.entity.relations[parts[0]]
        target = self.sets[relation.target]
        joined = and_(*(target.col(t) == scope.entity.col(s) for t, s in relation.pairs))
        condition: Any = true()
        if node.lambda_ is not None:
            inner = Compiler(self.sets, target, node.lambda_.identifier.name, self)
            condition = inner.expr(node.lambda_.expression)
            if isinstance(condition, Geometry):
                raise QueryError("the expression of any() or all() must be true or false")
        if isinstance(node.operator, ast.All):  # the grammar requires all()'s expression
            return not_(exists().where(joined, not_(func.coalesce(condition, false()))))
        return exists().where(joined, condition)

    def _path(self, entity: EntitySet, parts: list[str]) -> Any:
        head, rest = parts[0], parts[1:]
        if head in entity.relations:
            if not rest:
                raise QueryError(f"{head} is a navigation property: name one of its properties ({head}/...)")
            relation = entity.relations[head]
            if relation.many:
                raise QueryError(f"{entity.name}/{head} is a collection: filters follow only single navigations")
            target = self.sets[relation.target]
            inner = Compiler(self.sets, target)._path(target, rest)
            if isinstance(inner, Geometry):
                raise QueryError("geometry through a navigation path is not supported")
            joined = and_(*(target.col(t) == entity.col(s) for t, s in relation.pairs))
            return select(inner).where(joined).limit(1).scalar_subquery()
        if head in entity.geometry:
            if rest:
                raise QueryError(f"{head} is a geometry: it has no property {'/'.join(rest)}")
            lon, lat = entity.geometry[head]
            return Geometry(point=(entity.col(lon), entity.col(lat)))
        if head not in entity.properties and head != "id":
            known = ", ".join([*entity.properties, *entity.relations])
            raise QueryError(f"{entity.name} has no property {head!r} (it has {known})")
        col = entity.col(head)
        if rest:
            if head not in entity.json_properties:
                raise QueryError(f"{head} has no sub-property {'/'.join(rest)}")
            return type_coerce(col, JSONB)[tuple(rest)].astext
        return col

    def _Null(self, node: ast.Null) -> Any:
        return literal(None)

    def _Integer(self, node: ast.Integer) -> Any:
        return literal(int(node.val), Integer)

    def _Float(self, node: ast.Float) -> Any:
        return literal(float(node.val), Float)

    def _Boolean(self, node: ast.Boolean) -> Any:
        return literal(node.val.lower() == "true", Boolean)

    def _String(self, node: ast.String) -> Any:
        return literal(node.val, String)

    def _DateTime(self, node: ast.DateTime) -> Any:
        try:
            value = datetime.fromisoformat(node.val.replace("Z", "+00:00"))
        except ValueError as exc:
            raise QueryError(f"bad date-time {node.val!r}") from exc
        return literal(value if value.tzinfo else value.replace(tzinfo=UTC))

    def _Date(self, node: ast.Date) -> Any:
        return literal(date.fromisoformat(node.val), Date)

    def _Duration(self, node: ast.Duration) -> Any:
        return literal(node.py_val, Interval)

    def _Geography(self, node: ast.Geography) -> Any:
        return Geometry.from_wkt(node.val)

    def _List(self, node: ast.List) -> Any:
        return [self.expr(v) for v in node.val]

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.expr(node.operand)
        return not_(operand) if isinstance(node.op, ast.Not) else -operand

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        left, right = self.expr(node.left), self.expr(node.right)
        return and_(left, right) if isinstance(node.op, ast.And) else or_(left, right)

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = numeric(self.expr(node.left)), numeric(self.expr(node.right))
        op = type(node.op).__name__
        if op == "Add":
            return left + right
        if op == "Sub":
            return left - right
        if op == "Mult":
            return left * right
        if op == "Div":
            return cast(left, Float) / func.nullif(cast(right, Float), 0)
        return func.mod(cast(left, Numeric), cast(right, Numeric))

    def _Compare(self, node: ast.Compare) -> Any:
        left, right = self.expr(node.left), self.expr(node.right)
        if isinstance(left, Geometry) or isinstance(right, Geometry):
            raise QueryError("geometries are compared with st_equals(a, b), not eq")
        left, right = _align(left, right)
        op = type(node.comparator).__name__
        if op == "In":
            return left.in_(right if isinstance(right, list) else [right])
        if isinstance(node.right, ast.Null) or isinstance(node.left, ast.Null):
            value = left if isinstance(node.right, ast.Null) else right
            if op == "Eq":
                return value.is_(None)
            if op == "NotEq":
                return value.is_not(None)
            raise QueryError("null can only be compared with eq or ne")
        return {
            "Eq": lambda: left == right,
            "NotEq": lambda: left != right,
            "Lt": lambda: left < right,
            "LtE": lambda: left <= right,
            "Gt": lambda: left > right,
            "GtE": lambda: left >= right,
        }[op]()

    def _Call(self, node: ast.Call) -> Any:
        name = node.func.full_name()
        args = [self.expr(a) for a in node.args]
        handler = FUNCTIONS.get(name)
        if handler is None:
            raise QueryError(f"function {name}() is not supported")
        return handler(*args)


def _flatten(node: ast._Node) -> list[str]:
    if isinstance(node, ast.Identifier):
        return [*node.namespace, node.name]
    if isinstance(node, ast.Attribute):
        return [*_flatten(node.owner), node.attr]
    raise QueryError(f"unsupported path element {type(node).__name__}")


def _align(left: Any, right: Any) -> tuple[Any, Any]:
    """A JSON text path compared with a number or boolean is read as one."""
    for a, b in ((left, right), (right, left)):
        if (
            isinstance(getattr(a, "type", None), (Float, Integer, Boolean))
            and isinstance(getattr(b, "type", None), (String, Text))
            and not isinstance(b, type(literal("")))
        ):
            target = Boolean if isinstance(a.type, Boolean) else Float
            return (a, cast(b, target)) if a is left else (cast(b, target), a)
    return left, right


def _split(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


split_outside = _split

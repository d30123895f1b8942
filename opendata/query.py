"""Answering a SensorThings read: resource path -> scoped view -> options -> rows -> STA JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from opendata import latest
from opendata.entities import EntitySet, Relation
from opendata.errors import QueryError
from opendata.filters import Compiler, split_outside
from opendata.options import Expand, Options

ESTIMATED = "@ioc.countEstimated"  # beside @iot.count when it is the planner's estimate
QUERY_CANCELED = "57014"
_PLAIN_ID = re.compile(r"^[A-Za-z0-9_.:-]*\Z")
_SEGMENT = re.compile(r"^(?P<name>\$?[A-Za-z]+)(?:\((?P<id>.*)\))?$", re.S)


class NotFound(LookupError):
    """The path names no entity."""


@dataclass
class Segment:
    """One step of a resource path: a name, with an entity id in parentheses."""

    name: str
    id: str | None = None


def parse_path(path: str) -> list[Segment]:
    """``Things('a')/Datastreams`` -> segments; QueryError for a malformed path."""
    segments = []
    for raw in split_outside(path.strip("/"), "/"):
        m = _SEGMENT.match(raw)
        if not m:
            raise QueryError(f"cannot read path segment {raw!r}")
        ident = m.group("id")
        if ident is not None:
            ident = ident.strip()
            if len(ident) >= 2 and ident[0] == ident[-1] == "'":
                ident = ident[1:-1].replace("''", "'")
            if not ident:
                raise QueryError(f"empty id in {raw!r}")
        segments.append(Segment(m.group("name"), ident))
    return segments


def entity_link(base: str, entity: str, ident: Any) -> str:
    """The selfLink of an entity (string ids quoted as OData wants, percent-encoded where a URL needs it)."""
    text = str(ident)
    if not _PLAIN_ID.match(text):  # device and metric ids always match: no per-row quote() for them
        text = quote(text.replace("'", "''"), safe="'():")
    return f"{base}/{entity}('{text}')"


@dataclass
class Scope:
    """Where a path leads: an entity set, the conditions that narrow it, whether it is one entity or a property."""

    entity: EntitySet
    conditions: list[ColumnElement[bool]]
    single: bool = False
    property: str | None = None
    raw_value: bool = False
    parent: tuple[EntitySet, list[ColumnElement[bool]], Relation] | None = None  # the entity navigated from


class Reader:
    """Reads entity sets through one connection; ``base`` is the service root URL for links."""

    def __init__(self, sets: dict[str, EntitySet], conn: AsyncConnection, base: str, count_ms: int = 1000) -> None:
        self.sets = sets
        self.conn = conn
        self.base = base
        self.count_ms = count_ms  # an exact $count may take this long; past it, the planner's estimate

    # -- paths
    def scope(self, path: str) -> Scope:
        """Resolve a resource path to a Scope (QueryError, NotFound for unknown names)."""
        segments = parse_path(path)
        first = segments[0]
        if first.name not in self.sets:
            raise NotFound(f"no entity set {first.name!r} (there are {', '.join(self.sets)})")
        scope = Scope(self.sets[first.name], [])
        if first.id is not None:
            self._narrow(scope, first.id)
        for seg in segments[1:]:
            if scope.property is not None:
                if seg.name == "$value" and not scope.raw_value:
                    scope.raw_value = True
                    continue
                raise QueryError(f"nothing follows {scope.property}/{seg.name}")
            entity = scope.entity
            if seg.name in entity.relations:
                if not scope.single:
                    raise QueryError(f"{entity.name} needs an id before /{seg.name}")
                relation = entity.relations[seg.name]
                target = self.sets[relation.target]
                joined = [_joined(entity, target, relation, scope.conditions)]
                scope = Scope(target, joined, single=not relation.many, parent=(entity, scope.conditions, relation))
                if seg.id is not None:
                    if not relation.many:
                        raise QueryError(f"{seg.name} is a single entity: it takes no id")
                    self._narrow(scope, seg.id)
            elif seg.name in entity.properties and seg.id is None and scope.single:
                scope.property = seg.name
            else:
                raise NotFound(f"{entity.name} has no property or navigation {seg.name!r}")
        return scope

    def _narrow(self, scope: Scope, ident: str) -> None:
        scope.single = True
        scope.conditions.append(scope.entity.col("id") == ident)
        if scope.entity.name == "Observations":  # let the time index find one reading
            device, _, rest = ident.partition(":")
            stream, _, millis = rest.rpartition(":")
            if millis.isdigit():
                at, ms = datetime.fromtimestamp(int(millis) / 1000, UTC), timedelta(milliseconds=1)
                scope.conditions += [
                    scope.entity.col("_device") == device,
                    scope.entity.col("_metric") == stream.partition(".")[0],
                    scope.entity.col("_stream") == stream,
                    scope.entity.col("phenomenonTime").between(at - ms, at + ms),
                ]

    # -- reading
    async def read(self, path: str, opts: Options, url: str, query: dict[str, str]) -> Any:
        """The JSON body (or raw text for $value) for ``path`` with ``opts``."""
        scope = self.scope(path)
        entity = scope.entity
        if scope.parent is not None:
            # The entity navigated from is read first, and its keys go into the query as values: the planner
            # then takes them into every branch of a view (an index scan) instead of joining whole views.
            parent, conditions, relation = scope.parent
            keys = (
                await self.conn.execute(select(*(parent.col(s) for _, s in relation.pairs)).where(*conditions))
            ).all()
            if not keys:
                raise NotFound(f"no such entity: {path}")
            scope.conditions[0] = _matching(entity, relation, [tuple(k) for k in keys])
        if scope.single:
            rows = await self._rows(entity, scope.conditions, Options(top=1, select=opts.select, expand=opts.expand))
            if not rows:
                raise NotFound(f"no such entity: {path}")
            if scope.property is not None:
                value = render_value(entity, rows[0], scope.property)
                return str(value) if scope.raw_value else {scope.property: value}
            items = await self._render(entity, rows, opts)
            return items[0]
        if opts.result_format == "dataArray" and entity.name != "Observations":
            raise QueryError("$resultFormat=dataArray is for Observations")
        rows = await self._rows(entity, scope.conditions, opts, extra=1)
        body: dict[str, Any] = {}
        if opts.count:
            body["@iot.count"], estimated = await self._count(entity, scope.conditions, opts)
            if estimated:
                body[ESTIMATED] = True
        more = len(rows) > opts.top
        rows = rows[: opts.top]
        if more:
            body["@iot.nextLink"] = (
                url + "?" + urlencode({**query, "$skip": str(opts.skip + opts.top)}, safe="$(),'/=;:")
            )
        if opts.result_format == "dataArray":
            body["value"] = self._data_array(rows, opts)
        else:
            body["value"] = await self._render(entity, rows, opts)
        return dict(sorted(body.items(), key=lambda kv: kv[0] not in ("@iot.count", ESTIMATED)))

    async def _rows(
        self, entity: EntitySet, conditions: list[ColumnElement[bool]], opts: Options, extra: int = 0
    ) -> list[Any]:
        compiler = Compiler(self.sets, entity)
        stmt = select(entity.view).where(*conditions)
        if opts.filter:
            stmt = stmt.where(compiler.where(opts.filter))
        order = compiler.order(opts.orderby) if opts.orderby else []
        stmt = stmt.order_by(*order, entity.col("id")).offset(opts.skip).limit(opts.top + extra)
        return list((await self.conn.execute(stmt)).mappings().all())

    async def _count(self, entity: EntitySet, conditions: list[ColumnElement[bool]], opts: Options) -> tuple[int, bool]:
        """(count, estimated): exact when it takes under ``count_ms``, else PostgreSQL's estimate of the rows."""
        rows = select(entity.col("id")).where(*conditions)
        if opts.filter:
            rows = rows.where(Compiler(self.sets, entity).where(opts.filter))
        exact = select(func.count()).select_from(rows.subquery("counted"))
        limit = (await self.conn.execute(text("SELECT current_setting('statement_timeout')"))).scalar_one()
        try:
            async with self.conn.begin_nested():  # a cancelled count rolls back to here, not the whole read
                await self.conn.execute(select(func.set_config("statement_timeout", str(self.count_ms), True)))
                count = int((await self.conn.execute(exact)).scalar_one())
                await self.conn.execute(select(func.set_config("statement_timeout", limit, True)))
                return count, False
        except DBAPIError as exc:
            if sqlstate(exc) != QUERY_CANCELED:
                raise
        compiled = rows.compile(dialect=self.conn.dialect, compile_kwargs={"render_postcompile": True})
        params = tuple(compiled.params[name] for name in compiled.positiontup or [])
        plan = (await self.conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", params)).scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        # The largest row estimate of any step: the planner's figure for the final join of the policy's small
        # lookup lists is often 1, while its figure for the readings scanned (after the filter) is close.
        return max(_plan_rows(plan[0]["Plan"])), True

    async def _render(self, entity: EntitySet, rows: list[Any], opts: Options) -> list[dict[str, Any]]:
        self._check_select(entity, opts.select)
        items = list(map(renderer(entity, opts.select, self.base), rows))
        for item in opts.expand:
            await self._expand(entity, rows, items, item)
        return items

    async def _expand(self, entity: EntitySet, rows: list[Any], items: list[dict[str, Any]], item: Expand) -> None:
        relation = entity.relations.get(item.name)
        if relation is None:
            raise QueryError(f"{entity.name} has no navigation property {item.name!r} to $expand")
        if not rows:
            return
        target = self.sets[relation.target]
        opts = item.options
        keys = sorted({tuple(row[s] for _, s in relation.pairs) for row in rows}, key=str)
        key_cols = [target.col(t) for t, _ in relation.pairs]
        match = _matching(target, relation, keys)
        compiler = Compiler(self.sets, target)
        stmt = select(target.view).where(match)
        if opts.filter:
            stmt = stmt.where(compiler.where(opts.filter))
        order = [*(compiler.order(opts.orderby) if opts.orderby else []), target.col("id")]
        if entity.name == "Datastreams" and latest.applies(relation.target, opts):
            stmt = latest.latest(rows)
        elif relation.many:
            rank = func.row_number().over(partition_by=key_cols, order_by=order).label("_rank")
            ranked = stmt.add_columns(rank).subquery("ranked")
            stmt = (
                select(ranked)
                .where(ranked.c._rank > opts.skip, ranked.c._rank <= opts.skip + opts.top + 1)
                .order_by(ranked.c._rank)
            )
        children = list((await self.conn.execute(stmt)).mappings().all())
        grouped: dict[tuple[Any, ...], list[Any]] = {}
        for child in children:
            grouped.setdefault(tuple(child[t] for t, _ in relation.pairs), []).append(child)
        counts: dict[tuple[Any, ...], int] = {}
        if relation.many and opts.count:
            count_stmt = select(*key_cols, func.count()).where(match).group_by(*key_cols)
            if opts.filter:
                count_stmt = count_stmt.where(compiler.where(opts.filter))
            counts = {tuple(r[:-1]): r[-1] for r in (await self.conn.execute(count_stmt)).all()}
        for row, out in zip(rows, items, strict=True):
            key = tuple(row[s] for _, s in relation.pairs)
            found = grouped.get(key, [])
            if not relation.many:
                rendered = await self._render(target, found[:1], Options(select=opts.select, expand=opts.expand))
                out[item.name] = rendered[0] if rendered else None
                continue
            page = found[: opts.top]
            if opts.count:
                out[f"{item.name}@iot.count"] = counts.get(key, 0)
            out[item.name] = await self._render(target, page, opts)
            if len(found) > opts.top:
                link = entity_link(self.base, entity.name, row["id"]) + f"/{item.name}"
                out[f"{item.name}@iot.nextLink"] = (
                    link + "?" + urlencode({"$top": str(opts.top), "$skip": str(opts.skip + opts.top)}, safe="$'")
                )

    def _check_select(self, entity: EntitySet, chosen: list[str] | None) -> None:
        for name in chosen or []:
            if name not in entity.properties and name not in entity.relations:
                known = ", ".join([*entity.properties, *entity.relations])
                raise QueryError(f"$select: {entity.name} has no property {name!r} (it has {known})")

    def _data_array(self, rows: list[Any], opts: Options) -> list[dict[str, Any]]:
        self._check_select(self.sets["Observations"], opts.select)
        components = opts.select or ["id", "phenomenonTime", "resultTime", "result"]
        groups: dict[str, dict[str, Any]] = {}
        for row in rows:
            ds = f"{row['_device']}:{row['_stream']}"
            group = groups.setdefault(
                ds,
                {
                    "Datastream@iot.navigationLink": entity_link(self.base, "Datastreams", ds),
                    "components": components,
                    "dataArray@iot.count": 0,
                    "dataArray": [],
                },
            )
            group["dataArray"].append([render_value(self.sets["Observations"], row, c) for c in components])
            group["dataArray@iot.count"] += 1
        return list(groups.values())


def _joined(
    source: EntitySet, target: EntitySet, relation: Relation, conditions: list[ColumnElement[bool]]
) -> ColumnElement[bool]:
    """``target``'s rows related to the ``source`` rows matching ``conditions``."""
    keys = select(*(source.col(s) for _, s in relation.pairs)).where(*conditions).correlate(None)
    cols = [target.col(t) for t, _ in relation.pairs]
    return tuple_(*cols).in_(keys) if len(cols) > 1 else cols[0].in_(keys)


def _matching(target: EntitySet, relation: Relation, keys: list[tuple[Any, ...]]) -> ColumnElement[bool]:
    """``target``'s rows whose relation columns take one of ``keys``."""
    cols = [target.col(t) for t, _ in relation.pairs]
    return tuple_(*cols).in_(keys) if len(cols) > 1 else cols[0].in_([k[0] for k in keys])


def _iso(value: datetime) -> str:
    if value.tzinfo is not UTC:  # asyncpg gives UTC already
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def render_value(entity: EntitySet, row: Any, name: str) -> Any:
    """One property's JSON value."""
    value = row[name]
    if isinstance(value, datetime):
        end = row.get("_phenomenon_end") if name == "phenomenonTime" else None
        return f"{_iso(value)}/{_iso(end)}" if end else _iso(value)
    return value


def renderer(entity: EntitySet, chosen: list[str] | None, base: str) -> Callable[[Any], dict[str, Any]]:
    """A function rendering rows of ``entity`` as STA JSON: @iot.id, @iot.selfLink, properties, navigation links
    (as $select allows). What to write is decided once per page, not once per row."""
    with_id = not chosen or "id" in chosen
    props = [name for name in entity.properties[1:] if not chosen or name in chosen]
    links = [(f"/{name}", f"{name}@iot.navigationLink") for name in entity.relations if not chosen or name in chosen]
    linked = with_id or bool(links)

    def render(row: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        link = entity_link(base, entity.name, row["id"]) if linked else ""
        if with_id:
            out["@iot.id"] = row["id"]
            out["@iot.selfLink"] = link
        for name in props:
            value = row[name]
            out[name] = render_value(entity, row, name) if isinstance(value, datetime) else value
        for suffix, key in links:
            out[key] = link + suffix
        return out

    return render


def _plan_rows(node: dict[str, Any]) -> Iterator[int]:
    """Every "Plan Rows" of an EXPLAIN (FORMAT JSON) plan node and its children."""
    yield int(node.get("Plan Rows", 0))
    for child in node.get("Plans", []):
        yield from _plan_rows(child)


def sqlstate(exc: DBAPIError) -> str:
    """The SQLSTATE of a database error (asyncpg's, through SQLAlchemy's wrapper), or ""."""
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if code:
            return str(code)
    return ""

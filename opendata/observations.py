"""The Observations view: raw readings of raw-resolution Datastreams, and complete hours of hourly ones computed
from the 1-minute rollups (``hour_statistic``), each with the STA id ``device:stream:epoch-ms``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, String, and_, case, cast, func, literal, literal_column, select, union_all
from sqlalchemy.sql import ColumnElement, Select, Subquery

from ioc.tables import measurements, rollups_1m


def observations_view(dev: Any, met: Any, timescale: bool) -> Subquery:
    """Raw readings of raw-resolution Datastreams and complete hours of hourly ones (from rollups_1m).

    With TimescaleDB the hour is ``time_bucket``, whose comparisons TimescaleDB turns into ranges of ``bucket``:
    ``phenomenonTime ge X`` then reads the week asked for by index, not every retained minute of the stream
    (``date_trunc``, on plain PostgreSQL)."""
    return union_all(_raw(dev, met), _hourly(dev, met, timescale)).subquery("Observations")


def _raw(dev: Any, met: Any) -> Select[Any]:
    """The readings of the raw-resolution streams, as they were stored."""
    epoch_ms = func.floor(func.extract("epoch", measurements.c.time) * 1000).cast(String)
    return (
        select(
            (measurements.c.device_id + literal(":") + measurements.c.metric + literal(":") + epoch_ms).label("id"),
            measurements.c.time.label("phenomenonTime"),
            literal_column("NULL::timestamptz").label("_phenomenon_end"),
            measurements.c.time.label("resultTime"),
            measurements.c.value.label("result"),
            measurements.c.device_id.label("_device"),
            measurements.c.metric.label("_metric"),
            measurements.c.metric.label("_stream"),
        )
        .select_from(
            measurements.join(dev, dev.c.device_id == measurements.c.device_id).join(
                met, and_(met.c.kind == dev.c.kind, met.c.metric == measurements.c.metric, met.c.resolution == "raw")
            )
        )
        .where(measurements.c.part == "")
    )


def _hourly(dev: Any, met: Any, timescale: bool) -> Select[Any]:
    """Each complete hour of the hourly streams: its statistic over the hour's 1-minute rollups."""
    hour = (
        func.time_bucket(literal_column("interval '1 hour'"), rollups_1m.c.bucket)
        if timescale
        else func.date_trunc("hour", rollups_1m.c.bucket)
    ).label("hour")
    per_hour = (
        select(
            hour,
            rollups_1m.c.device_id,
            rollups_1m.c.metric,
            met.c.stream,
            met.c.statistic,
            func.sum(rollups_1m.c.sum).label("sum"),
            func.sum(rollups_1m.c.count).label("count"),
            func.min(rollups_1m.c.min).label("min"),
            func.max(rollups_1m.c.max).label("max"),
        )
        .select_from(
            rollups_1m.join(dev, dev.c.device_id == rollups_1m.c.device_id).join(
                met, and_(met.c.kind == dev.c.kind, met.c.metric == rollups_1m.c.metric, met.c.resolution == "hour")
            )
        )
        .where(rollups_1m.c.part == "", rollups_1m.c.bucket < func.date_trunc("hour", func.now()))
        .group_by(hour, rollups_1m.c.device_id, rollups_1m.c.metric, met.c.stream, met.c.statistic)
        .subquery("per_hour")
    )
    statistic = hour_statistic(per_hour.c.statistic, per_hour.c)
    hour_ms = func.floor(func.extract("epoch", per_hour.c.hour) * 1000).cast(String)
    return select(
        (per_hour.c.device_id + literal(":") + per_hour.c.stream + literal(":") + hour_ms).label("id"),
        per_hour.c.hour.label("phenomenonTime"),
        (per_hour.c.hour + literal_column("interval '1 hour'")).label("_phenomenon_end"),
        (per_hour.c.hour + literal_column("interval '1 hour'")).label("resultTime"),
        cast(statistic, Float).label("result"),
        per_hour.c.device_id.label("_device"),
        per_hour.c.metric.label("_metric"),
        per_hour.c.stream.label("_stream"),
    )


def hour_statistic(name: ColumnElement[Any], cols: Any) -> ColumnElement[Any]:
    """The named statistic (mean, sum, min, max) of an hour from its summed rollup columns."""
    return case_of(
        name,
        {"mean": cols.sum / func.nullif(cols.count, 0), "sum": cols.sum, "min": cols.min, "max": cols.max},
    )


def case_of(value: ColumnElement[Any], mapping: dict[Any, Any]) -> ColumnElement[Any]:
    """``CASE value WHEN k THEN v ... END`` (NULL for other values)."""
    if not mapping:
        return literal(None)
    return case({k: (v if isinstance(v, ColumnElement) else literal(v)) for k, v in mapping.items()}, value=value)

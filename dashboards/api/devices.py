"""``/api/v1/devices``: the registry with latest values, readings history (JSON and CSV) and snapshots."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from dashboards import queries, readings
from dashboards.api.deps import ConnDep, TimescaleDep
from dashboards.api.errors import ApiError, not_found
from dashboards.api.responses import SafeJSONResponse
from dashboards.encoding import as_utc, iso
from dashboards.live_state import META

router = APIRouter(tags=["devices"])

Status = Literal["unknown", "online", "offline", "stale"]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/devices")
async def list_devices(
    conn: ConnDep,
    kind: str | None = None,
    zone: str | None = None,
    status: Status | None = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Devices ordered by id, filtered by kind, zone and status, with their latest values."""
    items = await queries.load_devices(conn, kind=kind, zone=zone, status=status, limit=limit, offset=offset)
    total = await queries.count_devices(conn, kind=kind, zone=zone, status=status)
    return {"items": items, "total": total, "meta": META}


async def _device(conn: ConnDep, device_id: str) -> dict[str, Any]:
    found = await queries.load_devices(conn, device_ids=[device_id])
    if not found:
        raise not_found(f"device {device_id!r}")
    return found[0]


@router.get("/devices/{device_id}")
async def get_device(device_id: str, conn: ConnDep) -> dict[str, Any]:
    """One device with its latest values, flood level or congestion."""
    return await _device(conn, device_id)


Metric = Annotated[str, Query(min_length=1, max_length=64, description="metric name, e.g. water_level_cm")]
Part = Annotated[str, Query(max_length=64, description="sub-component, e.g. lane:2 (default: the device)")]
From = Annotated[datetime | None, Query(alias="from", description="start (ISO 8601); default to - 24 h")]
To = Annotated[datetime | None, Query(alias="to", description="end (ISO 8601); default now")]
Bucket = Annotated[str | None, Query(description="raw, or like 10s, 1m, 5m, 1h, 1d; default from the range")]


async def history(
    device_id: str,
    conn: ConnDep,
    timescale: TimescaleDep,
    metric: Metric,
    part: Part = "",
    start: From = None,
    end: To = None,
    bucket: Bucket = None,
) -> tuple[readings.Query, list[dict[str, Any]]]:
    """Dependency of the readings routes: the checked query and its points (400 on a bad range, 404 on a device)."""
    end = as_utc(end) or datetime.now(UTC)
    start = as_utc(start) or end - timedelta(days=1)
    try:
        q = readings.make_query(device_id, metric, part, start, end, bucket)
    except readings.ReadingsError as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = $1)", device_id):
        raise not_found(f"device {device_id!r}")
    try:
        points = await readings.fetch(conn, q, timescale=timescale)
    except readings.ReadingsError as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    return q, points


History = Annotated[tuple[readings.Query, list[dict[str, Any]]], Depends(history)]


@router.get("/devices/{device_id}/readings", response_model=dict[str, Any])
async def get_readings(found: History) -> SafeJSONResponse:
    """A metric's history: 1-minute rollups re-aggregated for buckets >= 1 min, raw rows below."""
    q, points = found
    # Returned as a response: up to thousands of points are encoded once, not validated again first.
    return SafeJSONResponse(
        {
            "device_id": q.device_id,
            "metric": q.metric,
            "part": q.part,
            "bucket": q.bucket,
            "from": iso(q.start),
            "to": iso(q.end),
            "source": q.source,
            "points": points,
        }
    )


@router.get(
    "/devices/{device_id}/readings.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_readings_csv(found: History) -> Response:
    """The same history as CSV (header row, UTC ISO times)."""
    q, points = found
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "avg", "min", "max", "count"])
    for p in points:
        writer.writerow(["" if v is None else v for v in (p["t"], p["avg"], p["min"], p["max"], p["count"])])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{q.device_id}_{q.metric}")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}.csv"'},
    )


@router.get(
    "/devices/{device_id}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no snapshot"}},
)
async def get_snapshot(device_id: str, conn: ConnDep) -> Response:
    """The device's latest camera snapshot."""
    row = await conn.fetchrow("SELECT time, content_type, data FROM snapshots WHERE device_id = $1", device_id)
    if row is None:
        raise not_found(f"snapshot of {device_id!r}")
    return Response(
        bytes(row["data"]),
        media_type=row["content_type"],
        headers={
            "Cache-Control": "no-cache",
            "Last-Modified": row["time"].strftime("%a, %d %b %Y %H:%M:%S GMT"),
        },
    )

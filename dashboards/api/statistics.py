"""``/api/v1/statistics/monthly``: a month's incident figures per zone and type (viewer), as JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dashboards.api.deps import ConnDep
from dashboards.api.errors import ApiError
from dashboards.api.procedures import synced
from incidents import statistics

router = APIRouter(tags=["incidents"])

Month = Annotated[
    str | None, Query(pattern=r"^20\d\d-(0[1-9]|1[0-2])$", description="YYYY-MM in the city's time; default this month")
]


def this_month() -> str:
    """The current month in the city's time, ``YYYY-MM``."""
    return datetime.now(UTC).astimezone(statistics.CITY_TZ).strftime("%Y-%m")


@router.get("/statistics/monthly")
async def get_monthly(request: Request, conn: ConnDep, month: Month = None) -> dict[str, Any]:
    """Alerts, incidents, mean times to acknowledge and resolve and time limits passed, per zone and type."""
    return await _monthly(request, conn, month or this_month())


@router.get(
    "/statistics/monthly.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_monthly_csv(
    request: Request, conn: ConnDep, month: Month = None, lang: Literal["vi", "en"] = "vi"
) -> Response:
    """The same figures as CSV (UTF-8, a header line; zone and type names in ``lang``)."""
    found = await _monthly(request, conn, month or this_month())
    return Response(
        statistics.to_csv(found, lang),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ioc-incidents-{found["month"]}.csv"'},
    )


async def _monthly(request: Request, conn: ConnDep, month: str) -> dict[str, Any]:
    try:
        statistics.month_bounds(month)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    catalogue = await synced(request, conn)
    return await statistics.monthly(conn, month, list(catalogue.procedures.values()))

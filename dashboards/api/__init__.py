"""The REST API ``/api/v1``: one module per resource, assembled here."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from dashboards.api import (
    air,
    alerts,
    apikeys,
    devices,
    field,
    forecasts,
    health,
    incidents,
    procedures,
    quarantine,
    simulations,
    statistics,
    summary,
    zones,
)
from dashboards.api.deps import require_role


def build_router() -> APIRouter:
    """``/api/v1``: health and a field link's own routes are public; every other route needs at least a viewer,
    some more (see their modules)."""
    api = APIRouter(prefix="/api/v1")
    api.include_router(health.router)
    api.include_router(field.public_router)
    protected = APIRouter(dependencies=[Depends(require_role("viewer"))])
    modules = (
        summary,
        zones,
        devices,
        alerts,
        incidents,
        procedures,
        statistics,
        quarantine,
        forecasts,
        air,
        simulations,
        apikeys,
    )
    for module in modules:
        protected.include_router(module.router)
    protected.include_router(field.operator_router)
    api.include_router(protected)
    return api

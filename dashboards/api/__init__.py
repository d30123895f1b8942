"""The REST API ``/api/v1``: one module per resource, assembled here."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from dashboards.api import (
    air,
    alerts,
    apikeys,
    devices,
    forecasts,
    health,
    incidents,
    quarantine,
    simulations,
    summary,
    zones,
)
from dashboards.api.deps import require_role


def build_router() -> APIRouter:
    """``/api/v1``: health is public; every other route needs at least a viewer, some more (see their modules)."""
    api = APIRouter(prefix="/api/v1")
    api.include_router(health.router)
    protected = APIRouter(dependencies=[Depends(require_role("viewer"))])
    for module in (summary, zones, devices, alerts, incidents, quarantine, forecasts, air, simulations, apikeys):
        protected.include_router(module.router)
    api.include_router(protected)
    return api

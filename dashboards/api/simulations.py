"""``/api/v1/simulations``: what-if runs for leaders (viewer and up: a run changes nothing but its own result).

A scenario is rain (``rain_mm`` over ``duration_min``, starting ``rain_start_min`` after the run's start, on
``zones`` or the whole city), the tide (``today``'s predicted tide, the run starting an hour before
``evening_high`` water, or a fixed ``level`` of ``tide_level_m``) and ``hours`` to run (at most 6). Runs are
queued, cached by scenario and cancellable (dashboards.simulations); the page is ``/simulate``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dashboards.api.deps import HubDep
from dashboards.api.errors import ApiError
from dashboards.simulations import Run, Simulations

router = APIRouter(tags=["simulations"])
RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


class Scenario(BaseModel):
    """What a leader asks: how much rain, for how long, where, on which tide, and how far ahead."""

    model_config = ConfigDict(extra="forbid")

    rain_mm: float = Field(ge=0, le=500, description="rain in mm over the duration")
    duration_min: int = Field(ge=10, le=360)
    rain_start_min: int = Field(0, ge=0, le=300, description="minutes after the run's start")
    tide: Literal["today", "evening_high", "level"] = "today"
    tide_level_m: float | None = Field(None, ge=-1.0, le=3.0, description="with tide=level: the river level (m)")
    zones: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=100)
    hours: float = Field(3.0, gt=0, le=6)

    @model_validator(mode="after")
    def _complete(self) -> Scenario:
        if self.tide == "level" and self.tide_level_m is None:
            raise ValueError("tide=level needs tide_level_m")
        if self.tide != "level":
            self.tide_level_m = None
        return self

    def request(self) -> dict[str, Any]:
        """The worker's request (simulators.whatif) for this scenario."""
        doc = self.model_dump(exclude={"tide", "tide_level_m"})
        doc["zones"] = sorted(set(self.zones)) if self.zones else None
        return {**doc, "tide": {"mode": self.tide, "level_m": self.tide_level_m}}


def _simulations(request: Request) -> Simulations:
    return request.app.state.simulations  # type: ignore[no-any-return]


def _run(request: Request, run_id: str) -> Run:
    run = _simulations(request).runs.get(run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no simulation {run_id} (runs are kept in memory, the newest 50)")
    return run


@router.post("/simulations", status_code=202)
async def start(request: Request, scenario: Scenario, hub: HubDep) -> dict[str, Any]:
    """Queue a what-if run (or get the recent run of the same scenario); poll ``GET /simulations/{id}``."""
    unknown = sorted(set(scenario.zones or []) - set(hub.live.zones))
    if unknown:
        raise ApiError(422, "unknown_zone", f"unknown zones: {', '.join(unknown)}")
    return _simulations(request).submit(scenario.request()).view()


@router.get("/simulations/{run_id}")
async def get(request: Request, run_id: RunId) -> dict[str, Any]:
    """A run: its state and, when done, the series per flood point and detector, with the present beside them."""
    return _run(request, run_id).view()


@router.delete("/simulations/{run_id}")
async def cancel(request: Request, run_id: RunId) -> dict[str, Any]:
    """Cancel a queued or running run."""
    run = _run(request, run_id)
    _simulations(request).cancel(run)
    return run.view()

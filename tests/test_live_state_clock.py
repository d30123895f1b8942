"""live_state: a device whose only change is the clock does not make its channels send (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.live_state import _clock_only

BASE: dict[str, Any] = {
    "device_id": "D1",
    "kind": "flood",
    "zone": "q1",
    "status": "online",
    "last_seen": "2026-01-01T00:00:00Z",
    "level": "normal",
    "latest": {"water_level_cm": {"value": 10.0, "time": "2026-01-01T00:00:00Z"}},
}


def changed(**fields: Any) -> dict[str, Any]:
    """BASE with some fields replaced."""
    return {**BASE, **fields}


@pytest.mark.parametrize(
    ("new", "clock_only"),
    [
        (changed(last_seen="2026-01-01T00:00:05Z"), True),
        (changed(latest={"water_level_cm": {"value": 10.0, "time": "2026-01-01T00:00:05Z"}}), True),
        (changed(latest={"water_level_cm": {"value": 11.0, "time": "2026-01-01T00:00:05Z"}}), False),
        (changed(latest={**BASE["latest"], "rainfall_mm_h": {"value": 0.0, "time": "2026-01-01T00:00:05Z"}}), False),
        (changed(latest={}), False),
        (changed(status="offline"), False),
        (changed(level="warning"), False),
        (changed(zone="q2"), False),
        ({**BASE, "snapshot_at": "2026-01-01T00:00:05Z"}, False),
    ],
)
def test_clock_only_changes(new: dict[str, Any], clock_only: bool) -> None:
    assert _clock_only(BASE, new) is clock_only

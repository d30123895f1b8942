"""Named scenarios: where model time starts and which storms and incidents are planted on top of nature."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ioc.fleet import Fleet
from simulators.models.geo import LOCAL_TZ
from simulators.models.rain import RainCell
from simulators.models.tide import Tide
from simulators.models.traffic import Incident

SCENARIOS = ("storm", "rush-hour", "incident", "quiet")
# The incident scenario's accident happens at the busiest roundabout of the demo fleet.
HANG_XANH = (10.8018, 106.7107)


@dataclass(frozen=True)
class Plan:
    """What a scenario sets up: the model start and the planted storms and incidents."""

    start: datetime
    natural_rain: bool = True
    natural_incidents: bool = True
    surge_m: float = 0.0
    cells: tuple[RainCell, ...] = ()
    incidents: tuple[Incident, ...] = field(default_factory=tuple)


def _at_local_hour(start: datetime, hour: int) -> datetime:
    local = start.astimezone(LOCAL_TZ)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0).astimezone(UTC)


def spring_high(tide: Tide, after: float) -> float:
    """Epoch seconds of the highest afternoon or evening high water of the 15 days after ``after``."""
    highs = []
    t = after
    while t < after + 15 * 86400:
        t = tide.next_high(t)
        if 12 <= datetime.fromtimestamp(t, LOCAL_TZ).hour < 22:
            highs.append((round(tide.level_m(t), 2), -t))
    return -max(highs)[1]


def plan(name: str | None, start: datetime, fleet: Fleet) -> Plan:
    """The plan of scenario ``name`` (None: nature only) for a run asked to start at ``start``."""
    if name is None:
        return Plan(start)
    if name == "storm":
        # Start 25 minutes before the next afternoon spring high water; a strong cell is already over the
        # north of the flood-prone belt (Bình Thạnh, Thủ Thiêm, Quận 7) and drives south across it while
        # the tide peaks.
        surge = 0.1
        high = spring_high(Tide(surge_m=surge), start.timestamp())
        begin = datetime.fromtimestamp(high - 25 * 60, UTC)
        t0 = begin.timestamp()
        cell = RainCell(
            born=t0 - 15 * 60,
            lifetime_s=75 * 60,
            lat=10.850,
            lon=106.714,
            north_kmh=-24.0,
            east_kmh=0.0,
            sigma_km=4.5,
            peak_mm_h=150.0,
        )
        return Plan(begin, natural_rain=False, surge_m=surge, cells=(cell,))
    if name == "rush-hour":
        return Plan(_at_local_hour(start, 17))
    if name == "incident":
        lat, lon = HANG_XANH
        accident = Incident(lat, lon, start.timestamp() + 120, duration_s=50 * 60, severity=0.85)
        return Plan(start, natural_incidents=False, incidents=(accident,))
    if name == "quiet":
        begin = _at_local_hour(start, 1)
        return Plan(begin, natural_rain=False, natural_incidents=False)
    raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")


def local_start(start: datetime | None) -> datetime:
    """The requested start (default: now, to the second) as an aware UTC datetime."""
    if start is None:
        return datetime.now(UTC).replace(microsecond=0)
    if start.tzinfo is None:
        start = start.replace(tzinfo=LOCAL_TZ)
    return start.astimezone(UTC)

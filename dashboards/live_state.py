"""Live state: the in-memory zones, devices, alerts and events every channel is computed from.

The hub hands it what the notifications say changed (``changes.Pending``); it reloads just that through
``queries`` and returns the channels affected. A channel's view is then ``figures`` over this state.

A device whose only change is the clock (``last_seen``, the times of unchanged latest values) does
not make its channels send: a busy fleet would otherwise keep every channel at its rate cap with
nothing new to show, and a real change would wait behind it. Such changes ride along with the next
real one, or with the periodic clock refresh (every few seconds).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from dashboards import air, figures, outlooks, queries
from dashboards.changes import Pending
from dashboards.delta import LIST_KEYS
from dashboards.encoding import jsonable
from incidents import board
from ioc import aqi

logger = logging.getLogger(__name__)

Row = dict[str, Any]
FIXED_CHANNELS = ("summary", "alerts", "events", "air", "incidents")
# The air indices (a query over 12 hours of rollups: 0.2 s for 25 sensors on the loaded test machine, see
# docs/air-quality.md) are recomputed when an air sensor reports, at most every AIR_MIN_GAP_S (an hourly
# index moves slowly), and at least every AIR_MAX_AGE_S (hours roll on without reports).
AIR_MIN_GAP_S = 20.0
AIR_MAX_AGE_S = 60.0
# In every channel's state (so in every snapshot and REST view, never in a delta: it does not change):
# how each list's items are keyed, and the defaults and bands behind every level the server computes.
# The channel names: the fixed ones, and a template per family ("{}" stands for the zone, kind or device).
CHANNEL_NAMES: Row = {
    **{name: name for name in FIXED_CHANNELS},
    "zone": "zone:{}",
    "kind": "kind:{}",
    "device": "device:{}",
    "forecast": "forecast:{}",
}
META: Row = {
    "keys": LIST_KEYS,
    "thresholds": {**figures.thresholds_meta(), "air": air.meta()},
    "channels": CHANNEL_NAMES,
}


def _clock_only(old: Row, new: Row) -> bool:
    """True when two versions of a device differ at most in what changes with every message even when nothing
    else does (``last_seen``, the times of the latest values): compared in place, this runs for every device
    the ingest touched."""
    if old.keys() != new.keys():
        return False
    for key, value in new.items():
        if key == "last_seen":
            continue
        if key != "latest":
            if old[key] != value:
                return False
            continue
        before = old["latest"] or {}
        if (value or {}).keys() != before.keys():
            return False
        for metric, entry in (value or {}).items():
            was = before[metric]
            if (entry.get("value") if isinstance(entry, dict) else entry) != (
                was.get("value") if isinstance(was, dict) else was
            ):
                return False
    return True


class LiveState:
    """Zones, devices with latest values, active alerts, latest events and time-windowed figures."""

    def __init__(self, kinds: set[str]) -> None:
        self.kinds = set(kinds)
        self.zones: dict[str, Row] = {}
        self.devices: dict[str, Row] = {}
        self.alerts: dict[int, Row] = {}
        self.resolved: dict[int, Row] = {}  # alerts resolved since the previous refresh, shown once
        self.events: list[Row] = []
        self.incidents: dict[str | None, int] = {}
        self.yesterday: Row = {
            "max_level_cm": None,
            "mean_speed_kmh": None,
            "flow_veh_h": None,
            "incidents_1h": 0,
            "points_warning": 0,
        }
        self.air_figures: dict[str, Row] = {}  # per air sensor: its index now (air.sensor)
        self.air_suspects: dict[str, Row] = {}
        self.air_at: str | None = None  # when the indices were computed
        self._air_stale = True
        self._air_computed = -AIR_MAX_AGE_S
        self.loaded = False
        self.clock_only: set[str] = set()  # channels whose devices changed only in timestamps
        self.forecasts: dict[str, Row] = {}  # zone -> its forecast:{zone} view (dashboards.outlooks)
        self.board: Row = {"incidents": [], "escalations": []}  # open incidents, pending escalations

    # ------------------------------------------------------------ refreshing

    async def refresh(self, conn: asyncpg.Connection, p: Pending) -> set[str]:
        """Reload what ``p`` says changed; returns the affected channels."""
        if p.full:
            return await self.load_all(conn)
        changed: set[str] = set()
        if p.all_devices or p.devices:
            changed |= await self.refresh_devices(conn, None if p.all_devices else sorted(p.devices))
        if p.alerts:
            changed |= await self.refresh_alerts(conn)
        if p.events:
            changed |= await self.refresh_events(conn)
        if p.windows:
            changed |= await self.refresh_windows(conn)
        else:
            changed |= await self.refresh_air(conn)
        if p.forecasts:
            changed |= await self.refresh_forecasts(conn)
        if p.incidents:
            changed |= await self.refresh_incidents(conn)
        return changed

    async def load_all(self, conn: asyncpg.Connection) -> set[str]:
        """Reload everything; returns every affected channel."""
        self.zones = {z["zone_id"]: z for z in await queries.load_zones(conn)}
        changed = await self.refresh_devices(conn, None)
        changed |= await self.refresh_alerts(conn)
        changed |= await self.refresh_events(conn)
        changed |= await self.refresh_windows(conn)
        changed |= await self.refresh_forecasts(conn)
        changed |= await self.refresh_incidents(conn)
        self.loaded = True
        return changed | {"summary"} | {f"zone:{z}" for z in self.zones}

    async def refresh_devices(self, conn: asyncpg.Connection, device_ids: list[str] | None) -> set[str]:
        """Reload the given devices (all when None); returns the affected channels.

        Known devices reload only what the ingest changes (status, times, latest values); a device
        new to this server is loaded whole.
        """
        if device_ids is None or not self.devices:
            rows = await queries.load_devices(conn, device_ids=device_ids)
        else:
            known = [d for d in device_ids if d in self.devices]
            unknown = [d for d in device_ids if d not in self.devices]
            rows = await queries.reload_live_fields(conn, self.devices, known) if known else []
            if unknown:
                rows += await queries.load_devices(conn, device_ids=unknown)
        changed: set[str] = set()
        fresh = {d["device_id"]: d for d in rows}
        gone = (set(self.devices) - set(fresh)) if device_ids is None else (set(device_ids) - set(fresh))
        for device_id in gone:
            old = self.devices.pop(device_id, None)
            if old is not None:
                changed |= {f"device:{device_id}", f"kind:{old['kind']}", f"zone:{old['zone']}", "summary"}
        for device_id, new in fresh.items():
            old = self.devices.get(device_id)
            if new["kind"] == air.KIND:  # a report moves its hourly means even when the latest values repeat
                self._air_stale = True
            if old == new:
                continue
            self.devices[device_id] = new
            channels = {f"device:{device_id}", f"kind:{new['kind']}", f"zone:{new['zone']}", "summary"}
            if old is not None and _clock_only(old, new):
                self.clock_only |= channels
                continue
            changed |= channels
            if old is not None and old["zone"] != new["zone"]:
                changed.add(f"zone:{old['zone']}")
            self.kinds.add(new["kind"])
        return changed

    async def refresh_alerts(self, conn: asyncpg.Connection) -> set[str]:
        """Reload active alerts; alerts that left the active set are kept once in ``resolved``."""
        active = {a["id"]: a for a in await queries.load_alerts(conn, state="active")}
        left = [i for i in self.alerts if i not in active]
        self.resolved = {a["id"]: a for a in await queries.load_alerts(conn, ids=left)} if left else {}
        changed: set[str] = set()
        for alert_id in set(active) | set(self.alerts):
            old, new = self.alerts.get(alert_id), active.get(alert_id)
            if old != new:
                changed |= {f"zone:{a['zone']}" for a in (old, new) if a is not None}
        self.alerts = active
        return changed | {"alerts", "summary"} if changed else changed

    async def refresh_events(self, conn: asyncpg.Connection) -> set[str]:
        """Reload the latest events and the incident counts."""
        events = await queries.load_events(conn, limit=queries.EVENTS_N)
        if events == self.events:
            return set()
        known = {e["id"] for e in self.events}
        changed = {"events", "summary"} | {f"zone:{e['zone']}" for e in events if e["id"] not in known}
        self.events = events
        self.incidents = await queries.incidents_by_zone(conn)
        return changed

    async def refresh_windows(self, conn: asyncpg.Connection) -> set[str]:
        """Recompute figures that move with the clock (incidents in the last hour, same time yesterday)."""
        self.incidents = await queries.incidents_by_zone(conn)
        at = datetime.now(UTC) - timedelta(days=1)
        self.yesterday = figures.yesterday(
            await queries.yesterday_rows(conn, at), await queries.incidents_by_zone(conn, at)
        )
        clock_only, self.clock_only = self.clock_only, set()
        return {"summary"} | {f"zone:{z}" for z in self.zones} | clock_only | await self.refresh_air(conn)

    async def refresh_air(self, conn: asyncpg.Connection) -> set[str]:
        """Recompute every air sensor's index and the suspect sensors, when air readings came or the last is old."""
        age = time.monotonic() - self._air_computed
        if age < AIR_MIN_GAP_S or (not self._air_stale and age < AIR_MAX_AGE_S):
            return set()
        self._air_stale, self._air_computed = False, time.monotonic()
        now = datetime.now(UTC)
        hours = await queries.air_hours(conn, now, aqi.METRICS, air.LIVE_HOURS, air.KIND)
        sensors = [d for d in self.devices.values() if d["kind"] == air.KIND]
        figures_, suspects = {d: air.sensor(h) for d, h in hours.items()}, air.suspects(sensors, hours)
        if figures_ == self.air_figures and suspects == self.air_suspects:
            return set()
        self.air_figures, self.air_suspects, self.air_at = figures_, suspects, now.isoformat().replace("+00:00", "Z")
        return {"air", "summary"}

    async def refresh_forecasts(self, conn: asyncpg.Connection) -> set[str]:
        """Reload the newest forecasts (the forecast job replaced them); returns the zones' changed channels."""
        views = outlooks.zone_views(list(self.zones), self.devices, await outlooks.load(conn))
        changed = {f"forecast:{z}" for z in set(views) | set(self.forecasts) if views.get(z) != self.forecasts.get(z)}
        self.forecasts = views
        return changed

    async def refresh_incidents(self, conn: asyncpg.Connection) -> set[str]:
        """Reload the open incidents and pending escalations (an incident's timeline grew)."""
        fresh = jsonable(await board.load(conn))
        if fresh == self.board:
            return set()
        self.board = fresh
        return {"incidents", "summary"}

    # ------------------------------------------------------------ channels

    def channel_exists(self, channel: str) -> bool:
        """True for the fixed channels and for zone/kind/device channels naming something known."""
        if channel in FIXED_CHANNELS:
            return True
        prefix, _, name = channel.partition(":")
        if prefix in ("zone", "forecast"):
            return name in self.zones
        if prefix == "kind":
            return name in self.kinds
        if prefix == "device":
            return name in self.devices
        return False

    def _active_alerts(self, zone: str | None = None) -> list[Row]:
        alerts = sorted(self.alerts.values(), key=lambda a: -a["id"])
        return alerts if zone is None else [a for a in alerts if a["zone"] == zone]

    def view(self, channel: str) -> Row:
        """The full state of ``channel`` (what a snapshot message carries), with the ``meta`` block."""
        return {**self._view(channel), "meta": META}

    def _view(self, channel: str) -> Row:
        if channel == "summary":
            zones = list(self.zones.values())
            view = figures.summary_view(
                zones,
                sorted(self.devices.values(), key=lambda d: d["device_id"]),
                self._active_alerts(),
                self.incidents,
                self.yesterday,
            )
            open_incidents = board.open_counts(self.board["incidents"], list(self.zones))
            return {**view, "air": air.summary(self._air_view()), "open_incidents": open_incidents}
        if channel == "air":
            return self._air_view()
        if channel == "alerts":
            return {"alerts": self._active_alerts()}
        if channel == "events":
            return {"events": list(self.events)}
        if channel == "incidents":
            return dict(self.board)
        prefix, _, name = channel.partition(":")
        if prefix == "zone":
            devices = sorted((d for d in self.devices.values() if d["zone"] == name), key=lambda d: d["device_id"])
            return figures.zone_view(self.zones[name], devices, self._active_alerts(name), self.incidents.get(name, 0))
        if prefix == "kind":
            return {
                "devices": sorted((d for d in self.devices.values() if d["kind"] == name), key=lambda d: d["device_id"])
            }
        if prefix == "device":
            return {"device": self.devices[name]}
        if prefix == "forecast":
            return self.forecasts.get(name) or outlooks.zone_views([name], {}, [])[name]
        raise KeyError(channel)

    def _air_view(self) -> Row:
        sensors = [d for d in self.devices.values() if d["kind"] == air.KIND]
        view = air.view(list(self.zones.values()), sensors, self.air_figures, self.air_suspects)
        return {**view, "at": self.air_at}

    def zone_summaries(self) -> list[Row]:
        """Every zone with its summary line and device counts (``GET /zones``)."""
        items = []
        for zone in self.zones.values():
            devices = [d for d in self.devices.values() if d["zone"] == zone["zone_id"]]
            alerts = [a for a in self.alerts.values() if a["zone"] == zone["zone_id"]]
            items.append(figures.zone_summary(zone, devices, alerts, self.incidents.get(zone["zone_id"], 0)))
        return items

    def show_resolved(self, channel: str, delta: Row) -> Row:
        """Replace an alert's removal marker by the resolved alert, so clients see it once as resolved."""
        if not self.resolved or not isinstance(delta.get("alerts"), list):
            return delta
        alerts = [self.resolved.get(a["id"], a) if a.get("_removed") else a for a in delta["alerts"]]
        return {**delta, "alerts": alerts}

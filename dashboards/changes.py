"""Changes: the database's notifications folded into one pending refresh (what to reload, nothing more)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dashboards import metrics
from ioc.db import ALERTS_CHANNEL, FORECASTS_CHANNEL, INCIDENTS_CHANNEL, REGISTRY_CHANNEL


@dataclass
class Pending:
    """What changed since the last refresh."""

    full: bool = False
    windows: bool = False
    all_devices: bool = False
    devices: set[str] = field(default_factory=set)
    alerts: bool = False
    events: bool = False
    forecasts: bool = False
    incidents: bool = False

    def __bool__(self) -> bool:
        """True when something is to be refreshed."""
        return (
            self.full
            or self.windows
            or self.all_devices
            or bool(self.devices)
            or self.alerts
            or self.events
            or self.forecasts
            or self.incidents
        )

    def note(self, channel: str, payload: str) -> dict[str, Any]:
        """Fold one notification on ``channel`` in; returns its payload as a dict ({} if not a JSON object)."""
        try:
            doc = json.loads(payload) if channel not in (REGISTRY_CHANNEL, FORECASTS_CHANNEL, INCIDENTS_CHANNEL) else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        if channel == ALERTS_CHANNEL:
            self.alerts = True
        elif channel == FORECASTS_CHANNEL:
            self.forecasts = True
        elif channel == INCIDENTS_CHANNEL:
            self.incidents = True
        elif channel == REGISTRY_CHANNEL:
            self.full = True
        else:
            devices = doc.get("devices")
            # A notice that does not name its devices (another writer, an older ingest): reload them all.
            if isinstance(devices, list):
                before = len(self.devices)
                self.devices.update(str(d) for d in devices)
                metrics.LIVE_COALESCED.inc(before + len(devices) - len(self.devices))
            else:
                self.all_devices = True
            if doc.get("events"):
                self.events = True
        return doc

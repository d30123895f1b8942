"""Live mode: play a Simulation onto a broker in step with the wall clock, one connection per device."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from simulators.devices import Message, canonical_status_topic
from simulators.mqtt import BrokerAddress, DeviceConnection
from simulators.progress import Progress
from simulators.runner import Simulation

logger = logging.getLogger(__name__)

TICK_S = 0.02
CONNECT_TIMEOUT_S = 15.0
CLOSE_TIMEOUT_S = 10.0


@dataclass
class RunSummary:
    """What a run did: messages by channel, injected faults, errors and acknowledgements."""

    sent: int = 0
    acked: int = 0
    errors: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    model_start: str = ""
    model_end: str = ""
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "sent": self.sent,
            "acked": self.acked,
            "errors": self.errors,
            "channels": dict(self.channels),
            "faults": dict(self.faults),
            "model_start": self.model_start,
            "model_end": self.model_end,
            "wall_seconds": round(self.wall_seconds, 3),
        }


class LiveFleet:
    """The connections of every simulated device, kept by device id."""

    def __init__(self, sim: Simulation, address: BrokerAddress) -> None:
        self._sim = sim
        self._address = address
        self._specs = {d.device_id: d for d in sim.simulated()}
        self._links: dict[str, DeviceConnection] = {}
        self._retired_acks = 0
        self._retired_errors = 0
        self._dropping: dict[str, threading.Thread] = {}

    def _link(self, device_id: str) -> DeviceConnection:
        link = DeviceConnection(self._address, device_id, canonical_status_topic(self._specs[device_id]))
        link.start()
        self._links[device_id] = link
        return link

    def connect_all(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Open every device's connection and wait until the broker has accepted them all."""
        for device_id in sorted(self._specs):
            self._link(device_id)
        deadline = time.monotonic() + timeout
        missing = [
            d
            for d, link in self._links.items()
            if not link.wait_connected(max(0.0, deadline - time.monotonic()))
        ]
        if missing:
            self.close([], 1.0)
            raise ConnectionError(
                f"{len(missing)} of {len(self._links)} simulated devices could not connect to "
                f"{self._address.host}:{self._address.port} within {timeout:.0f} s (first: {missing[0]})"
            )

    def handle(self, message: Message) -> mqtt.MQTTMessageInfo | None:
        """Publish, drop or reconnect as the message says."""
        if message.action == "drop":
            link = self._links.pop(message.device_id)
            self._dropping[message.device_id] = link.drop()
            self._retired_acks += link.acked
            self._retired_errors += link.errors
            return None
        link_or_none = self._links.get(message.device_id)
        if message.action == "connect" or link_or_none is None:
            # The old connection must be gone first, or the new one would take over its session.
            dropper = self._dropping.pop(message.device_id, None)
            if dropper is not None:
                dropper.join(CLOSE_TIMEOUT_S)
            link = self._link(message.device_id)
            link.wait_connected(CONNECT_TIMEOUT_S)
        else:
            link = link_or_none
        return link.publish(message.topic, message.payload, message.qos, message.retain)

    @property
    def acked(self) -> int:
        """PUBACKs (QoS 1) and completed QoS 0 sends so far."""
        return self._retired_acks + sum(link.acked for link in self._links.values())

    @property
    def errors(self) -> int:
        """Publishes paho refused."""
        return self._retired_errors + sum(link.errors for link in self._links.values())

    def close(self, goodbye: list[Message], timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Publish the goodbye messages, wait for their acknowledgements, disconnect everyone cleanly."""
        pending: dict[str, list[mqtt.MQTTMessageInfo]] = {}
        for message in goodbye:
            info = self.handle(message)
            if info is not None:
                pending.setdefault(message.device_id, []).append(info)
        for device_id, link in self._links.items():
            link.close(pending.get(device_id, []), timeout)
        for dropper in self._dropping.values():
            dropper.join(timeout)


def play(
    sim: Simulation,
    url: str,
    duration_s: float | None,
    stop: threading.Event,
    on_message: Callable[[Message], None] | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Publish ``sim`` in (scaled) real time until ``duration_s`` has passed or ``stop`` is set."""
    summary = RunSummary(model_start=sim.start.isoformat())
    live = LiveFleet(sim, BrokerAddress.parse(url))
    live.connect_all()
    began = time.monotonic()
    # The model clock starts now: payload timestamps are the wall-clock times messages are due.
    sim.wall_start = datetime.now(UTC)
    end_wall = sim.wall_start + timedelta(seconds=duration_s) if duration_s is not None else None

    def send(message: Message) -> None:
        live.handle(message)
        summary.sent += message.action == "publish" or message.action == "connect"
        if on_message is not None:
            on_message(message)

    try:
        for message in sim.connect():
            send(message)
        while not stop.is_set():
            now = datetime.now(UTC)
            last = end_wall is not None and now >= end_wall
            for message in sim.advance(sim.model_time(end_wall if last and end_wall else now)):
                send(message)
            if progress is not None:
                progress.update(
                    summary.sent, live.errors, len(sim.fault_log), f", model {sim.model_time(now):%H:%M}"
                )
            if last:
                break
            stop.wait(TICK_S)
    finally:
        goodbye = sim.goodbye()
        summary.sent += len(goodbye)
        live.close(goodbye)
        summary.acked, summary.errors = live.acked, live.errors
        summary.channels = Counter(sim.counts)
        summary.faults = Counter(f["fault"] for f in sim.fault_log)
        summary.model_end = datetime.fromtimestamp(sim.now, UTC).isoformat()
        summary.wall_seconds = time.monotonic() - began
    return summary

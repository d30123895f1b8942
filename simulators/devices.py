"""A simulated device: its traits drawn from the seed, its battery, its state, and the messages it sends."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ioc.fleet import DeviceSpec
from ioc.topics import canonical_topic
from simulators import formats
from simulators.models.traffic import Flow

CENTRAL_ZONES = frozenset({"q1", "q3", "q5", "q10", "binhthanh", "phunhuan", "tanbinh"})
# Batteries drain 0.3 %/day from a fixed epoch and are swapped at 5 %: a level is a function of the time,
# so history and the live run that follows it agree.
BATTERY_EPOCH = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
BATTERY_DRAIN_PER_DAY = 0.3


def device_traits(seed: int, spec: DeviceSpec) -> tuple[random.Random, float, float, float]:
    """A device's own generator, its reporting phase, its battery level at BATTERY_EPOCH and its centrality.

    A device reports at a fixed phase of the clock, so runs started at any time (and the history) keep its
    cadence."""
    rng = random.Random(f"{seed}:device:{spec.device_id}")
    phase = round(rng.uniform(0, spec.interval_s), 1)
    battery0 = rng.uniform(55, 100)
    centrality = (1.05 if spec.zone in CENTRAL_ZONES else 0.92) * rng.uniform(0.9, 1.05)
    return rng, phase, battery0, centrality


def battery_pct(t: Any, battery0: float) -> Any:
    """Battery level at epoch seconds ``t`` (a number or an array): a drain from a fixed date, swapped at 5 %."""
    used = (100 - battery0 + BATTERY_DRAIN_PER_DAY * (np.asarray(t, dtype=np.float64) - BATTERY_EPOCH) / 86400) % 95
    return np.round(100 - used, 1)[()]


def canonical_status_topic(spec: DeviceSpec) -> str:
    """The status topic (and will topic) of a device."""
    return canonical_topic(spec.kind, spec.device_id, "status")


@dataclass(frozen=True)
class Message:
    """One thing a device does on the broker. ``action`` is ``publish``, ``drop`` (vanish; the will fires) or
    ``connect`` (come back); for ``drop`` the topic and payload are those of the will."""

    model_time: datetime
    wall_time: datetime
    device_id: str
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1
    action: str = "publish"
    channel: str = "telemetry"
    # Without encoding (``Simulation(encode=False)``, for comparisons): what the message carries, not its bytes.
    reading: formats.Reading | None = None
    event: formats.CameraEvent | None = None
    fault: str | None = None


@dataclass
class SimDevice:
    """A simulated device's state: its generator, next report time, battery, connection and latched events."""

    spec: DeviceSpec
    rng: random.Random
    next_at: float
    battery0: float
    seq: int = 0
    online: bool = True
    back_at: float = 0.0
    centrality: float = 1.0
    latched: set[str] = field(default_factory=set)
    last_flow: Flow | None = None


def latch(device: SimDevice, name: str, on: bool, off: bool) -> bool:
    """True once when ``on`` becomes true; re-armed only after ``off`` (hysteresis)."""
    if name in device.latched:
        if off:
            device.latched.discard(name)
        return False
    if on:
        device.latched.add(name)
        return True
    return False

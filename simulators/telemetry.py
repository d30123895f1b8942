"""A reading as a device sends it: encoded in its wire format, or changed by the fault the run draws for it."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from simulators import faults as faultlib
from simulators import formats
from simulators.devices import Message, SimDevice

if TYPE_CHECKING:
    from simulators.runner import Simulation

logger = logging.getLogger(__name__)


def telemetry(sim: Simulation, device: SimDevice, reading: formats.Reading, t: float) -> list[Message]:
    """The messages a report becomes: its telemetry, or what a drawn fault makes of it (logged in ``fault_log``)."""
    spec = device.spec
    kind = sim.faults.pick(sim.fault_rng)
    when, wall = sim.model_datetime(t), reading.ts
    if kind is None:
        if not sim.encode:
            return [Message(when, wall, spec.device_id, "", b"", reading=reading)]
        topic, payload = formats.telemetry(spec, reading)
        return [Message(when, wall, spec.device_id, topic, payload, False, sim.qos)]
    if not sim.encode and kind != "drop":
        # History keeps what the store would: the reading (at its skewed time) or, for a fault the
        # ingest quarantines, the fault's name alone.
        if kind == "clock_skew":
            reading = replace(reading, ts=reading.ts + timedelta(seconds=faultlib.skew_s(sim.fault_rng)))
        kept = reading if kind in ("clock_skew", "duplicate") else None
        out = [Message(when, wall, spec.device_id, "", b"", reading=kept, fault=kind)]
    elif kind == "drop":
        device.online = False
        device.back_at = t + spec.interval_s * sim.fault_rng.randint(3, 8)
        topic, payload = formats.status(spec, False)
        out = [Message(when, wall, spec.device_id, topic, payload, True, 1, "drop", "status")]
    else:
        out = [
            Message(when, wall, spec.device_id, topic, payload, False, sim.qos)
            for topic, payload in faulty(sim, device, reading, kind)
        ]
    log_fault(sim, kind, device, out[0].topic, when, wall)
    return out


def faulty(sim: Simulation, device: SimDevice, reading: formats.Reading, kind: str) -> list[tuple[str, bytes]]:
    """The (topic, payload) pairs a reading becomes under fault ``kind`` (any but ``drop``)."""
    spec, rng = device.spec, sim.fault_rng
    if kind == "out_of_range":
        metric, value = faultlib.out_of_range(sim.kinds[spec.kind])
        parts = {p: {**v, metric: value} if metric in v else v for p, v in reading.parts.items()}
        return [formats.telemetry(spec, replace(reading, metrics={**reading.metrics, metric: value}, parts=parts))]
    if kind == "clock_skew":
        return [formats.telemetry(spec, replace(reading, ts=reading.ts + timedelta(seconds=faultlib.skew_s(rng))))]
    if kind == "unknown_device":
        ghost = replace(spec, device_id=f"GHOST-{rng.randint(0, 99999):05d}", format="canonical")
        return [formats.canonical(ghost, reading)]
    if kind == "wrong_topic":
        others = [o for o in sim.by_kind_format[(spec.kind, spec.format)] if o != spec.device_id]
        other = sim.devices[rng.choice(others)].spec if others else replace(spec, device_id=f"{spec.device_id}-X")
        return [(formats.telemetry(other, reading)[0], formats.telemetry(spec, reading)[1])]
    topic, payload = formats.telemetry(spec, reading)
    if kind == "malformed":
        payload = faultlib.malformed(payload, rng)
    elif kind == "oversized":
        payload = faultlib.oversized(payload)
    elif kind == "nan":
        payload = faultlib.with_nan(payload)
    return [(topic, payload)] * (2 if kind == "duplicate" else 1)


def log_fault(sim: Simulation, kind: str, device: SimDevice, topic: str, when: datetime, wall: datetime) -> None:
    """Keep a fault in the run's ``fault_log`` and log it as ``fault=... device=... topic=...``."""
    device_id = device.spec.device_id
    sim.fault_log.append(
        {
            "fault": kind,
            "device": device_id,
            "topic": topic,
            "model_time": when.isoformat(),
            "wall_time": wall.isoformat(),
        }
    )
    logger.info("fault=%s device=%s topic=%s", kind, device_id, topic)

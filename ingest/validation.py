"""Validation: decoded records checked against the device registry, the kind's metrics and the clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.decoders import Route
from ingest.decoders.parsing import show
from ioc.errors import PayloadError
from ioc.kinds import KindSpec
from ioc.reasons import Reason
from ioc.records import SEVERITIES, Event, HardwareClaim, Measurement, Record
from ioc.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """The registry row of a device, as the caller knows it."""

    device_id: str
    kind: str
    format: str
    enabled: bool = True
    hardware_id: str | None = None  # ``metadata.hardware_id``: the board a payload must claim (Sensor.Community)


def _registered(route: Route, device: DeviceInfo | None, kinds: dict[str, KindSpec]) -> tuple[DeviceInfo, KindSpec]:
    """The topic's device and its kind when it is registered, enabled and of the topic's kind; else PayloadError."""
    if device is None:
        raise PayloadError(Reason.UNKNOWN_DEVICE, f"device {route.device_id!r} is not registered")
    if not device.enabled:
        raise PayloadError(Reason.DEVICE_DISABLED, f"device {route.device_id!r} is disabled")
    if route.kind is not None and route.kind != device.kind:
        raise PayloadError(
            Reason.KIND_MISMATCH, f"topic kind {route.kind!r} but device {device.device_id!r} is {device.kind!r}"
        )
    spec = kinds.get(device.kind)
    if spec is None:
        raise PayloadError(Reason.KIND_MISMATCH, f"device kind {device.kind!r} is not defined in the kinds")
    return device, spec


def validate(
    route: Route,
    records: list[Record],
    device: DeviceInfo | None,
    kinds: dict[str, KindSpec],
    settings: Settings,
    now: datetime,
) -> list[Record]:
    """The records to store (``records`` without hardware claims) when all are acceptable; else PayloadError."""
    device, spec = _registered(route, device, kinds)
    if not records:
        raise PayloadError(Reason.EMPTY, "no records")
    earliest = now - timedelta(seconds=settings.ingest_past_window_s)
    latest = now + timedelta(seconds=settings.ingest_future_skew_s)
    metrics = spec.metrics
    device_id = route.device_id
    claims = 0
    for record in records:
        if record.device_id != device_id:
            raise PayloadError(Reason.DEVICE_MISMATCH, f"payload names {show(record.device_id)}, topic {device_id!r}")
        time = record.time
        if time.tzinfo is None:
            raise PayloadError(Reason.BAD_SCHEMA, "time has no UTC offset")
        if not earliest <= time <= latest:
            raise PayloadError(
                Reason.TIMESTAMP_OUT_OF_WINDOW,
                f"{time.isoformat()} is outside {earliest:%Y-%m-%dT%H:%M}..{latest:%H:%M}Z",
            )
        if type(record) is Measurement:
            metric = metrics.get(record.metric)
            if metric is None:
                raise PayloadError(Reason.UNKNOWN_METRIC, f"{show(record.metric)} is not a {spec.name} metric")
            value = record.value
            if value - value != 0.0:
                raise PayloadError(Reason.NON_FINITE, f"{record.metric} is not finite")
            if not metric.min <= value <= metric.max:
                raise PayloadError(
                    Reason.OUT_OF_RANGE,
                    f"{record.metric}={value:g} outside {metric.min:g}..{metric.max:g} {metric.unit}",
                )
        elif type(record) is Event:
            if record.severity not in SEVERITIES:
                raise PayloadError(Reason.BAD_EVENT, f"severity {show(record.severity)} is unknown")
            if not 0.0 <= record.confidence <= 1.0:
                raise PayloadError(Reason.BAD_EVENT, f"confidence {record.confidence!r} is outside 0..1")
        elif type(record) is HardwareClaim:
            if record.hardware_id != device.hardware_id:
                raise PayloadError(
                    Reason.DEVICE_MISMATCH,
                    f"payload's board {show(record.hardware_id)} is not the registered hardware_id of {device_id!r}",
                )
            claims += 1
    return [r for r in records if type(r) is not HardwareClaim] if claims else records

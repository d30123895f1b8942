"""Raw messages to items: route, rate-limit, decode, validate; a bad message becomes a quarantine item."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.decoders import Limits, decode, route, topic_device
from ingest.quarantine import QuarantineBudget, QuarantinePolicy
from ingest.ratelimit import RateLimiter
from ingest.registry import DeviceRegistry
from ingest.validation import validate
from ingest.writer import Batch
from ioc.errors import PayloadError
from ioc.kinds import KindSpec
from ioc.reasons import Reason
from ioc.records import RawMessage, Record
from ioc.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Item:
    """One message after decoding: its records, or why it is quarantined."""

    raw: RawMessage
    records: list[Record] | None
    received: datetime
    kind: str = ""
    reason: Reason | None = None
    detail: str = ""
    device_id: str | None = None
    sampled: bool = True  # a quarantined message within its device's budget is kept, else only counted


def to_batch(items: list[Item], policy: QuarantinePolicy) -> Batch:
    """Gather items into what one transaction writes."""
    batch = Batch()
    for it in items:
        if it.records is not None:
            batch.add(it.records, it.received, it.kind)
            continue
        assert it.reason is not None
        raw = it.raw
        if it.sampled:
            batch.reject(it.received, raw.topic, raw.payload, it.reason, it.detail, it.device_id, policy.sample_bytes)
        else:
            window = datetime.fromtimestamp(policy.window(raw.received_at), UTC)
            batch.count(window, it.received, raw.topic, len(raw.payload), it.reason, it.device_id)
    return batch


class Pipeline:
    """Decodes and validates messages against the kinds and the device registry."""

    def __init__(self, settings: Settings, kinds: dict[str, KindSpec], registry: DeviceRegistry) -> None:
        self.settings = settings
        self.kinds = kinds
        self.registry = registry
        self.limits = Limits.from_settings(settings)
        self.ratelimiter = RateLimiter.from_settings(settings)
        self.quarantine = QuarantineBudget(QuarantinePolicy.from_settings(settings))

    async def decode_all(self, messages: list[RawMessage], *, rate_limit: bool) -> list[Item]:
        """Decode and validate messages into items (bad ones carry their quarantine reason)."""
        items: list[Item] = []
        settings, kinds, limits = self.settings, self.kinds, self.limits
        for m in messages:
            received = datetime.fromtimestamp(m.received_at, UTC)
            device_id = None
            try:
                r = route(m.topic, kinds)
                device_id = r.device_id
                if rate_limit and not self.ratelimiter.allow(device_id, m.received_at):
                    raise PayloadError(Reason.RATE_LIMITED, f"over {settings.ingest_rate_limit_per_s:g} msg/s")
                records = decode(r, m.payload, received, limits)
                device = self.registry.devices.get(device_id)  # inline: this runs for every message
                if device is None:
                    device = await self.registry.lookup(device_id, r.kind_hint, r.format)
                records = validate(r, records, device, kinds, settings, received)
                assert device is not None
                items.append(Item(m, records, received, device.kind, device_id=device_id))
            except PayloadError as exc:
                if device_id is None and exc.reason is Reason.UNKNOWN_TOPIC:
                    device_id = topic_device(m.topic)
                items.append(self.rejected(m, received, exc.reason, exc.detail, device_id))
            except Exception as exc:  # a decoder bug must not stop the stream: quarantine and log it
                logger.exception("decoder failed on topic %s", m.topic)
                items.append(self.rejected(m, received, Reason.INTERNAL_ERROR, repr(exc)[:200], device_id))
        return items

    def rejected(self, raw: RawMessage, received: datetime, reason: Reason, detail: str, device_id: str | None) -> Item:
        """A quarantined message: kept as a sample while its device and reason are within budget, else counted."""
        sampled = self.quarantine.keep(device_id, reason, raw.received_at)
        return Item(raw, None, received, reason=reason, detail=detail, device_id=device_id, sampled=sampled)

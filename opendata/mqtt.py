"""The MQTT read side: each new public Observation pushed as SensorThings JSON to
``v1.1/Datastreams('<id>')/Observations`` on the public broker (anonymous, read-only), never on the devices' broker.

``NOTIFY ioc_ingest`` (the devices a commit touched) -> the policy-limited Observations view (raw readings newer
than the last pushed) -> paho -> public broker. Complete hours (hourly Datastreams, the cameras' only ones) are
pushed once per hour, ``HOUR_GRACE_S`` after it ends. What the policy withholds is not in the view, so it is
never pushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ioc.provisioning import mosquitto_hash, write_private
from opendata.entities import EntitySet
from opendata.notices import listen
from opendata.query import renderer

logger = logging.getLogger(__name__)

PUBLIC_TEMPLATE = Path(__file__).with_name("mosquitto-public.conf")
PUBLISHER = "ioc.open"  # the one account that may publish on the public broker
TOPIC_ROOT = "v1.1"
HOUR_GRACE_S = 120  # the rollups of an hour's last minute are written well within this after the hour
BATCH_S = 0.2  # at most five reads a second, however often the ingest commits
# A reading is pushed when it is newer than its Datastream's last pushed one and at most SAME_INSTANT older than its
# device's newest pushed one (a device's first since the start: than the time of the read). Every read is so bounded:
# a reading committed later than that (a backlog, the spool after an outage) is the API's, not pushed.
SAME_INSTANT = timedelta(seconds=60)


def topic(datastream_id: str) -> str:
    """The topic a Datastream's Observations are pushed to (FROST-Server's form)."""
    return f"{TOPIC_ROOT}/Datastreams('{datastream_id}')/Observations"


def write_broker_files(directory: Path) -> tuple[list[str], str]:
    """Write the public broker's password and ACL files into ``directory``; returns the configuration lines that
    use them and the publisher's ``user:password`` (its secret kept in ``directory/publisher``, mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    secret_file = directory / "publisher"
    secret = secret_file.read_text().strip() if secret_file.exists() else ""
    if not secret:
        secret = secrets.token_urlsafe(32)
        write_private(secret_file, secret + "\n")
    write_private(directory / "passwd", f"{PUBLISHER}:{mosquitto_hash(secret)}\n")
    acl = [
        "# Written by opendata.mqtt. Lines before the first 'user' are the anonymous clients': read only, v1.1 only.",
        f"topic read {TOPIC_ROOT}/#",
        "",
        f"user {PUBLISHER}",
        f"topic write {TOPIC_ROOT}/#",
    ]
    write_private(directory / "acl", "\n".join(acl) + "\n")
    lines = ["allow_anonymous true", f"password_file {directory / 'passwd'}", f"acl_file {directory / 'acl'}"]
    return lines, f"{PUBLISHER}:{secret}"


def publishable_hour(now: datetime) -> datetime:
    """The newest hour whose Observation may be pushed at ``now``: complete, and ``HOUR_GRACE_S`` past its end."""
    return (now - timedelta(seconds=HOUR_GRACE_S)).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


class ObservationPublisher:
    """Pushes new public Observations to the public broker (QoS 0, not retained: a live feed; history is the API's)."""

    def __init__(self, observations: EntitySet, mqtt_url: str, api_base: str) -> None:
        self.view = observations.view
        self.render = renderer(observations, None, api_base)
        self.url = mqtt_url
        self.published = 0
        self.connected = False
        self._start = datetime.now(UTC)
        self._since: dict[tuple[str, str], datetime] = {}  # (device, stream) -> newest phenomenonTime pushed
        self._newest: dict[str, datetime] = {}  # device -> newest phenomenonTime pushed of any of its streams
        self._pending: set[str] | None = set()  # devices to look at; None: every device (after a gap)
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()  # connected to the public broker (paho drops QoS 0 messages while not)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_hour = publishable_hour(self._start) - timedelta(hours=1)  # the newest hour goes out at start
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        parts = urlsplit(self.url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ioc-open-{secrets.token_hex(4)}")
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, 30)
        client.connect_async(parts.hostname or "127.0.0.1", parts.port or 1884, keepalive=30)
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected(not reason.is_failure)
        if reason.is_failure:
            logger.warning("open data MQTT: the public broker refused the publisher: %s", reason)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected(False)

    def _connected(self, up: bool) -> None:
        """From paho's thread: hand the new state to the event loop."""
        self.connected = up
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._ready.set if up else self._ready.clear)

    @asynccontextmanager
    async def running(self, engine: AsyncEngine, listen_url: str) -> AsyncIterator[None]:
        """Push while the context is open: paho's own thread, a LISTEN connection and the two push loops."""
        self._loop = asyncio.get_running_loop()
        self._client.loop_start()
        tasks = [
            asyncio.create_task(
                listen(listen_url, "ioc-open-mqtt", self._notified, self._listening), name="open-mqtt-listen"
            ),
            asyncio.create_task(self._push_new(engine), name="open-mqtt-raw"),
            asyncio.create_task(self._push_hours(engine), name="open-mqtt-hours"),
        ]
        logger.info("open data MQTT: pushing to %s", urlsplit(self.url).hostname)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._client.disconnect()
            self._client.loop_stop()

    def _notified(self, payload: str) -> None:
        """A commit notice: remember its devices (a notice without a list means all of them)."""
        try:
            devices = orjson.loads(payload).get("devices")
        except (orjson.JSONDecodeError, AttributeError):
            devices = None
        if devices is None or self._pending is None:
            self._pending = None
        else:
            self._pending.update(d for d in devices if isinstance(d, str))
        self._wake.set()

    def _listening(self, up: bool) -> None:
        """Connected again after a gap: look at every device once (notices were missed)."""
        if up:
            self._pending = None
            self._wake.set()

    async def _push_new(self, engine: AsyncEngine) -> None:
        """Push the raw readings newer than each Datastream's last pushed one, for the devices notified."""
        while True:
            await self._wake.wait()
            await self._ready.wait()
            self._wake.clear()
            devices, self._pending = self._pending, set()
            try:
                self._send(await self._new_rows(engine, devices))
            except Exception:  # noqa: BLE001 - a failed read is retried at the next notice, never fatal
                logger.exception("open data MQTT: reading new observations failed")
                self._pending = None
            await asyncio.sleep(BATCH_S)

    def floor(self, device: str, now: datetime) -> datetime:
        """How far back to look for ``device``'s new readings: a little before its newest pushed one (a metric of
        the same instant may commit later), else a little before now."""
        return (self._newest.get(device) or now) - SAME_INSTANT

    async def _new_rows(self, engine: AsyncEngine, devices: set[str] | None) -> list[Any]:
        v = self.view.c
        now = datetime.now(UTC)
        if devices is None:  # after a gap in the notices: every device, over the last SAME_INSTANT only
            query = select(self.view).where(v.phenomenonTime > now - SAME_INSTANT)
        elif devices:
            since = min(self.floor(d, now) for d in devices)
            query = select(self.view).where(v._device.in_(sorted(devices)), v.phenomenonTime > since)
        else:
            return []
        async with engine.connect() as conn:
            query = query.where(v._phenomenon_end.is_(None)).order_by(v.phenomenonTime)
            rows = (await conn.execute(query)).mappings().all()
        fresh = []
        for row in rows:
            key, at = (row["_device"], row["_stream"]), row["phenomenonTime"]
            if at > self._since.get(key, self._start):
                self._since[key] = at
                self._newest[key[0]] = max(at, self._newest.get(key[0], at))
                fresh.append(row)
        return fresh

    async def _push_hours(self, engine: AsyncEngine) -> None:
        """Once an hour, ``HOUR_GRACE_S`` after it ends, push every public hourly Datastream's Observation of it."""
        v = self.view.c
        while True:
            await self._ready.wait()
            hour = publishable_hour(datetime.now(UTC))
            if hour > self._last_hour:
                try:
                    async with engine.connect() as conn:
                        query = select(self.view).where(v._phenomenon_end.is_not(None), v.phenomenonTime == hour)
                        self._send((await conn.execute(query)).mappings().all())
                    self._last_hour = hour
                except Exception:  # noqa: BLE001 - retried at the next turn
                    logger.exception("open data MQTT: reading the hour %s failed", hour)
            next_turn = hour + timedelta(hours=2, seconds=HOUR_GRACE_S) - datetime.now(UTC)
            await asyncio.sleep(min(max(next_turn.total_seconds(), 1.0), 60.0))

    def _send(self, rows: Iterable[Any]) -> None:
        """Publish each row as its Observation (paho queues them for its thread)."""
        for row in rows:
            datastream = f"{row['_device']}:{row['_stream']}"
            self._client.publish(topic(datastream), orjson.dumps(self.render(row)), qos=0)
            self.published += 1

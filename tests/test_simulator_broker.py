"""The simulated fleet on a real Mosquitto: what a subscriber receives shows the storm, the rush hour,
camera incidents with JPEG snapshots, and wills that fire when devices drop off."""

from __future__ import annotations

import io
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from ingest.decoders import SUBSCRIPTIONS, decode, route
from ioc.fleet import Fleet, load_fleet
from ioc.records import Event, Measurement, Record, Snapshot, StatusChange
from ioc.settings import REPO_ROOT
from simulators.models.geo import LOCAL_TZ
from simulators.publisher import RunSummary, play
from simulators.runner import Simulation
from tests.support.stack import Broker, wait_for

pytestmark = pytest.mark.timeout(240)


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: datetime


class Recorder:
    """A plain subscriber on every device topic (the ingest's filters and account); the paho thread only appends."""

    def __init__(self, broker: Broker) -> None:
        self.messages: list[Received] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-sim-recorder"
        )
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe([(f, 1) for f in SUBSCRIPTIONS])
        self.client.username_pw_set(broker.reader, broker.reader_password)
        self.client.on_subscribe = lambda c, u, m, r, p: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append(
            Received(m.topic, bytes(m.payload), bool(m.retain), datetime.now(UTC))
        )
        self.client.max_queued_messages_set(0)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")


@pytest.fixture
def recorder(broker: Broker, fleet: Fleet) -> Iterator[Recorder]:
    rec = Recorder(broker)
    try:
        yield rec
    finally:
        rec.close()
        # Leave no retained statuses of the demo fleet behind for other tests.
        cleaner = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-sim-cleaner")
        cleaner.username_pw_set(broker.user, broker.password)
        cleaner.connect(broker.host, broker.port)
        cleaner.loop_start()
        infos = [
            cleaner.publish(f"ioc/v1/{d.kind}/{d.device_id}/status", b"", qos=1, retain=True)
            for d in fleet.devices
        ]
        for info in infos:
            info.wait_for_publish(10)
        cleaner.disconnect()
        cleaner.loop_stop()


def delivered(recorder: Recorder) -> int:
    """Messages of this run the subscriber has received (the broker forwards live ones without the retain flag)."""
    return sum(not m.retain for m in list(recorder.messages))


def decoded(messages: list[Received]) -> list[tuple[Received, list[Record]]]:
    """Every live message decoded by the ingest's own decoders, whatever its format."""
    out = []
    for message in messages:
        if message.retain:  # stored before we subscribed (earlier runs): not part of this run
            continue
        out.append((message, decode(route(message.topic), message.payload, message.at)))
    return out


def run_live(sim: Simulation, broker: Broker, seconds: float) -> RunSummary:
    stop = threading.Event()
    return play(sim, broker.url, seconds, stop)


def test_storm_on_a_real_broker(broker: Broker, fleet: Fleet, recorder: Recorder) -> None:
    sim = Simulation(
        fleet, seed=2024, speed=60, start=datetime(2025, 10, 15, 14, tzinfo=LOCAL_TZ), scenario="storm"
    )
    began = time.monotonic()
    summary = run_live(sim, broker, 60)
    assert time.monotonic() - began < 90
    wait_for(lambda: delivered(recorder) >= summary.acked, 15, what="every acknowledged message at the subscriber")
    assert summary.errors == 0 and summary.acked == summary.sent
    received = decoded(recorder.messages)

    levels: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    events: list[tuple[Received, Event]] = []
    snapshots: dict[str, list[Snapshot]] = defaultdict(list)
    statuses: dict[str, list[bool]] = defaultdict(list)
    skew = []
    for message, records in received:
        for record in records:
            if isinstance(record, Measurement) and record.metric == "water_level_cm":
                levels[record.device_id].append((record.time, record.value))
                skew.append(abs((message.at - record.time).total_seconds()))
            elif isinstance(record, Event):
                events.append((message, record))
            elif isinstance(record, Snapshot):
                snapshots[record.device_id].append(record)
            elif isinstance(record, StatusChange):
                statuses[record.device_id].append(record.online)

    # Every device announced itself and said goodbye.
    assert len(statuses) == len(fleet.devices)
    assert all(s[0] is True and s[-1] is False for s in statuses.values())
    # Timestamps are the wall-clock publish times (the ingest refuses future ones).
    assert statistics.median(skew) < 0.5 and max(skew) < 3
    # Flood sensors of every format report; several pass 30 cm and come back below it.
    flood_ids = {d.device_id for d in fleet.devices if d.kind == "flood"}
    assert set(levels) == flood_ids
    peaked_and_drained = []
    for device_id, series in levels.items():
        series.sort()
        values = [v for _, v in series]
        top = values.index(max(values))
        if max(values) > 30 and min(values[top:]) < 30 and values[-1] < max(values) - 10:
            peaked_and_drained.append(device_id)
    assert len(peaked_and_drained) >= 5, peaked_and_drained
    assert {fleet.device(d).format for d in peaked_and_drained} >= {"canonical", "senml"}
    # Cameras saw the flood (and the traffic it caused), in both event formats, each with a JPEG still.
    kinds = {e.type for _, e in events}
    assert "flood.observed" in kinds
    assert {m.topic.split("/")[0] for m, _ in events} == {"ioc", "vendor"}
    for _, event in events:
        stills = snapshots[event.device_id]
        assert stills
        image = Image.open(io.BytesIO(stills[0].data))
        assert image.format == "JPEG" and image.size == (320, 180)
    assert sum(len(s) for s in snapshots.values()) == len(events)


def test_rush_hour_and_dropped_devices_on_a_real_broker(
    broker: Broker, fleet: Fleet, recorder: Recorder
) -> None:
    wednesday = datetime(2025, 10, 15, 9, tzinfo=LOCAL_TZ)
    sim = Simulation(fleet, seed=7, speed=600, start=wednesday, scenario="rush-hour", faults="drop=0.002")
    assert sim.start.astimezone(LOCAL_TZ).hour == 17
    summary = run_live(sim, broker, 15)  # 17:00 to 19:30 local
    wait_for(lambda: delivered(recorder) >= summary.acked, 15, what="every acknowledged message at the subscriber")
    assert summary.errors == 0
    counts: dict[str, list[tuple[float, float]]] = defaultdict(list)
    offline_mid_run: dict[str, int] = defaultdict(int)
    for message, records in decoded(recorder.messages):
        for record in records:
            if isinstance(record, Measurement) and record.metric == "vehicle_count" and not record.part:
                hour = sim.model_time(record.time).astimezone(LOCAL_TZ)
                counts[record.device_id].append((hour.hour + hour.minute / 60, record.value))
            elif (
                isinstance(record, StatusChange) and not record.online and message.at < sim.wall_time(sim.now)
            ):
                offline_mid_run[record.device_id] += 1
    traffic_ids = {d.device_id for d in fleet.devices if d.kind == "traffic"}
    assert traffic_ids <= set(counts)
    peak = [v for d in traffic_ids for h, v in counts[d] if 17.25 <= h <= 17.75]
    evening = [v for d in traffic_ids for h, v in counts[d] if h >= 19.0]
    assert peak and evening
    assert statistics.mean(peak) > 1.4 * statistics.mean(evening)
    # Each dropped device vanished without a goodbye: the broker published its will.
    dropped: dict[str, int] = defaultdict(int)
    for fault in sim.fault_log:
        assert fault["fault"] == "drop"
        dropped[fault["device"]] += 1
    assert dropped
    assert offline_mid_run == dropped
    assert summary.faults["drop"] == len(sim.fault_log)
    assert summary.model_end.startswith((sim.start + timedelta(hours=2, minutes=30)).date().isoformat())

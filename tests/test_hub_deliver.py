"""hub and subscriber: deltas written to clients in the publish itself, leading edge and beat (no database:
``publish`` works on the in-memory state)."""

from __future__ import annotations

import asyncio
import json

from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.uri import parse_uri

from dashboards.hub import Hub
from dashboards.subscriber import Subscriber

INTERVAL_MS = 100
ZONES = ("q1", "q2")


class Socket:
    """A client's socket as a frame writer sees it: takes whole frames, or refuses while ``full``."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.full = False

    def write(self, data: bytes) -> bool:
        """Keep ``data`` unless the socket is backed up."""
        if self.full:
            return False
        self.writes.append(data)
        return True

    def messages(self) -> list[dict[str, object]]:
        """Every message written so far, parsed as a websocket client would."""
        client = ClientProtocol(parse_uri("ws://ioc.invalid/"), state=State.OPEN, max_size=None)
        client.receive_data(b"".join(self.writes))
        return [json.loads(bytes(e.data)) for e in client.events_received() if isinstance(e, Frame)]


def device(device_id: str, level: float, zone: str = "q1") -> dict[str, object]:
    """A flood device as the live state holds it, with one latest value."""
    return {
        "device_id": device_id,
        "kind": "flood",
        "name": device_id,
        "zone": zone,
        "status": "online",
        "last_seen": None,
        "metadata": {},
        "thresholds": {},
        "level": None,
        "congestion": None,
        "latest": {"water_level_cm": {"value": level, "time": None}},
    }


async def hub_with(*devices: str) -> Hub:
    """A hub whose live state holds flood devices at level 1.0 (publish() needs no database)."""
    hub = Hub(None, "", {"flood"}, INTERVAL_MS)  # type: ignore[arg-type]
    hub.live.devices = {d: device(d, 1.0) for d in devices}
    hub.live.zones = {z: {"zone_id": z, "name": z, "lat": 10.8, "lon": 106.7, "priority": 1} for z in ZONES}
    hub._ready.set()
    return hub


async def subscribed(hub: Hub, socket: Socket | None, *channels: str) -> Subscriber:
    """A client on ``channels`` whose snapshots have been sent (by the websocket route, as they queue)."""
    sub = Subscriber(socket.write if socket else None)
    await hub.subscribe(sub, list(channels))
    assert {m.type for m in sub.take()} == {"snapshot"}
    return sub


def change(hub: Hub, device_id: str, level: float) -> set[str]:
    """A new reading of ``device_id`` in the live state; returns the channels it touches."""
    hub.live.devices[device_id] = device(device_id, level)
    return {f"device:{device_id}", "kind:flood", "zone:q1", "summary"}


async def test_a_delta_is_written_in_the_publish_one_write_per_client() -> None:
    """Two channels' deltas of one publish reach a client in one write, nothing left for its sender task."""
    hub = await hub_with("A")
    socket = Socket()
    sub = await subscribed(hub, socket, "device:A", "zone:q1")
    hub.publish(change(hub, "A", 2.0))
    assert len(socket.writes) == 1
    messages = socket.messages()
    assert {(m["channel"], m["type"]) for m in messages} == {("device:A", "delta"), ("zone:q1", "delta")}
    assert sub.take() == []


async def test_a_backed_up_client_is_queued_and_merged_without_delaying_others() -> None:
    """A client whose socket refuses gets one merged delta per channel in its outbox, and nothing written
    directly until that outbox is drained (no overtaking); the other client is written at once each time."""
    hub = await hub_with("A")
    slow, fast = Socket(), Socket()
    slow_sub = await subscribed(hub, slow, "device:A")
    await subscribed(hub, fast, "device:A")
    slow.full = True
    hub.publish(change(hub, "A", 2.0))
    slow.full = False  # room again, but the queued delta must go first
    await asyncio.sleep(INTERVAL_MS / 1000)
    hub.publish(change(hub, "A", 3.0))
    assert slow.writes == [] and len(fast.writes) == 2
    waiting = slow_sub.take()
    assert [(m.channel, m.type) for m in waiting] == [("device:A", "delta")]
    assert waiting[0].data["device"]["latest"]["water_level_cm"]["value"] == 3.0  # type: ignore[index]
    await asyncio.sleep(INTERVAL_MS / 1000)
    hub.publish(change(hub, "A", 4.0))  # drained: written directly again
    assert len(slow.writes) == 1


async def test_nothing_is_written_past_a_message_the_route_is_still_sending() -> None:
    """While the route sends taken messages one by one (the ASGI path), a new delta waits in the outbox."""
    hub = await hub_with("A")
    socket = Socket()
    sub = await subscribed(hub, socket, "device:A")
    sub.sending = True
    hub.publish(change(hub, "A", 2.0))
    assert socket.writes == [] and [m.type for m in sub.take()] == ["delta"]


async def test_clients_on_the_same_channels_share_one_buffer() -> None:
    """The frames of a publish are joined once for every client that watches the same channels."""
    hub = await hub_with("A")
    sockets = [Socket() for _ in range(3)]
    for socket in sockets:
        await subscribed(hub, socket, "device:A", "zone:q1")
    hub.publish(change(hub, "A", 2.0))
    assert all(len(s.writes) == 1 for s in sockets)
    assert sockets[0].writes[0] is sockets[1].writes[0] is sockets[2].writes[0]


async def test_a_quiet_channel_sends_at_once_a_busy_one_waits_for_its_beat() -> None:
    """Leading edge: the first change after a quiet interval goes in the same publish; the next one, inside
    the interval, is held and leaves on a beat of the shared clock, merged with what came meanwhile."""
    hub = await hub_with("A")
    socket = Socket()
    await subscribed(hub, socket, "device:A")
    loop = asyncio.get_running_loop()
    hub.publish(change(hub, "A", 2.0))
    first = loop.time()
    assert len(socket.writes) == 1
    hub.publish(change(hub, "A", 3.0))
    hub.publish(change(hub, "A", 4.0))
    assert len(socket.writes) == 1  # held: within the interval of the last delta
    deadline = loop.time() + 2.0
    while len(socket.writes) < 2 and loop.time() < deadline:
        await asyncio.sleep(0.005)
        if hub._flush_due.is_set():  # the update loop's part: a held channel's flush (no refresh needed here)
            hub._flush_due.clear()
            hub.publish(set())
    assert len(socket.writes) == 2
    assert loop.time() - first >= INTERVAL_MS / 1000 - 0.01
    last = socket.messages()[-1]
    assert last["data"]["device"]["latest"]["water_level_cm"]["value"] == 4.0  # type: ignore[index]

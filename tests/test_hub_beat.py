"""hub: busy channels share one coalescing beat, so a client's channels leave in the same publish (no database)."""

from __future__ import annotations

import asyncio

from dashboards.hub import Hub
from dashboards.subscriber import Subscriber

INTERVAL_MS = 100


def device(device_id: str, level: float) -> dict[str, object]:
    """A flood device as the live state holds it, with one latest value."""
    return {"device_id": device_id, "kind": "flood", "zone": "q1", "latest": {"water_level_cm": {"value": level}}}


async def test_busy_channels_leave_on_the_same_beats() -> None:
    """Two channels that started sending 30 ms apart and then change all the time send together, on multiples
    of the interval, at most once per interval each."""
    hub = Hub(None, "", {"flood"}, INTERVAL_MS)  # type: ignore[arg-type]  # publish() needs no database
    hub.live.devices = {"A": device("A", 1.0), "B": device("B", 1.0)}
    hub._ready.set()
    sub = Subscriber()
    await hub.subscribe(sub, ["device:A", "device:B"])
    sub.take()  # the snapshots
    loop = asyncio.get_running_loop()
    sent: dict[str, list[float]] = {"device:A": [], "device:B": []}
    started = loop.time()
    step = 0
    while loop.time() - started < 1.5:
        step += 1
        changed = {"device:A"} if loop.time() - started < 0.03 else {"device:A", "device:B"}
        for channel in changed:
            name = channel.partition(":")[2]
            hub.live.devices[name] = device(name, float(step))
        hub.publish(changed)
        for message in sub.take():
            sent[message.channel].append(loop.time())
        await asyncio.sleep(0.005)
    a, b = ([t for t in sent[c] if t - started > 0.4] for c in ("device:A", "device:B"))
    assert len(a) >= 8 and len(b) >= 8, sent
    assert all(any(abs(ta - tb) < 0.003 for tb in b) for ta in a), f"A and B on different beats: {a} {b}"
    elapsed = loop.time() - started
    for times in sent.values():  # at most one delta per interval (the gaps themselves carry this loop's jitter)
        assert len(times) <= elapsed / (INTERVAL_MS / 1000) + 2, times

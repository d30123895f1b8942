"""A broker restart under load (issue 11, observation 2): publishers that reconnect as soon as the broker is
back (as field devices do, faster than the ingest), the embedded broker stopped and started, and the
database compared with every message the broker acknowledged.

Used by tests/test_broker_restart.py (one run) and benchmarks/bench_broker_restart.py (three runs).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import asyncpg

from ioc.up import Stack
from simulators.load import connect_packet, publish_packet
from simulators.mqtt import BrokerAddress

SLICE_S = 0.01
RECONNECT_S = 0.1
MAX_INFLIGHT = 20_000


@dataclass
class RestartResult:
    """What was acknowledged, what the database holds, and the difference."""

    sent: int = 0
    acked: int = 0
    stored_acked: int = 0
    stored_unacked: int = 0
    duplicates: int = 0
    reconnects: int = 0
    drain_s: float = 0.0

    @property
    def lost(self) -> int:
        """Acknowledged by the broker but never stored."""
        return self.acked - self.stored_acked


@dataclass
class _Link:
    """One raw MQTT 3.1.1 publisher connection for a slice of the devices; reconnects when dropped."""

    name: str
    address: BrokerAddress
    devices: list[int]
    acked: dict[int, set[int]]
    seqs: dict[int, int]
    sent: int = 0
    reconnects: int = 0
    inflight: dict[int, tuple[int, int]] = field(default_factory=dict)
    next_id: int = 0

    async def _open(self, stop: asyncio.Event) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.address.host, self.address.port)
                writer.write(connect_packet(self.name, self.address.username, self.address.password))
                head = await asyncio.wait_for(reader.readexactly(4), 5)
                if head == b"\x20\x02\x00\x00":
                    return reader, writer
                writer.close()
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                pass
            await asyncio.sleep(RECONNECT_S)
        return None

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        while True:
            frame = await reader.readexactly(4)  # PUBACK: 0x40 0x02 id id, the only packet a publisher gets
            if frame[0] != 0x40:
                raise ConnectionError(f"unexpected packet 0x{frame[0]:02x}")
            entry = self.inflight.pop(int.from_bytes(frame[2:4], "big"), None)
            if entry is not None:
                self.acked[entry[0]].add(entry[1])

    async def run(self, ids: list[str], rate: float, stop: asyncio.Event) -> None:
        """Publish ``rate`` msg/s round-robin over this link's devices until ``stop``, reconnecting when cut."""
        topics = {}
        for d in self.devices:
            raw = f"ioc/v1/flood/{ids[d]}/telemetry".encode()
            topics[d] = len(raw).to_bytes(2, "big") + raw
        turn = 0
        while not stop.is_set():
            opened = await self._open(stop)
            if opened is None:
                return
            reader, writer = opened
            self.inflight.clear()  # unacknowledged on a dead connection: not counted, whatever became of them
            acks = asyncio.create_task(self._read_acks(reader))
            began, done = time.monotonic(), 0
            try:
                while not stop.is_set() and not acks.done():
                    due = int(rate * (time.monotonic() - began)) - done
                    out = []
                    for _ in range(max(0, due)):
                        if len(self.inflight) >= MAX_INFLIGHT:
                            break
                        device = self.devices[turn % len(self.devices)]
                        turn += 1
                        seq = self.seqs[device] = self.seqs[device] + 1
                        payload = f'{{"ts":{time.time():.6f},"seq":{seq},"metrics":{{"water_level_cm":{seq % 200}}}}}'
                        self.next_id = self.next_id % 65535 + 1
                        self.inflight[self.next_id] = (device, seq)
                        out.append(publish_packet(topics[device], payload.encode(), 1, self.next_id))
                    done += max(0, due)
                    self.sent += len(out)
                    writer.write(b"".join(out))
                    await writer.drain()
                    await asyncio.sleep(SLICE_S)
                if stop.is_set():
                    deadline = time.monotonic() + 15
                    while self.inflight and not acks.done() and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                    writer.write(b"\xe0\x00")
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                acks.cancel()
                await asyncio.gather(acks, return_exceptions=True)
                writer.close()
            if not stop.is_set():
                self.reconnects += 1


async def restart_under_load(
    stack: Stack,
    url: str,
    ids: list[str],
    *,
    rate: float = 2000,
    before_s: float = 5,
    down_s: float = 10,
    after_s: float = 10,
    connections: int = 4,
    drain_timeout_s: float = 120,
) -> RestartResult:
    """Publish at ``rate`` for ``before_s``, stop the broker for ``down_s``, start it, publish ``after_s`` more,
    then wait until every acknowledged message is stored (or the drain timeout) and count."""
    assert stack.mosquitto is not None
    address = BrokerAddress.parse(url)
    acked: dict[int, set[int]] = {d: set() for d in range(len(ids))}
    seqs = dict.fromkeys(range(len(ids)), 0)
    links = [
        _Link(f"sim-restart-{i}", address, list(range(i, len(ids), connections)), acked, seqs)
        for i in range(connections)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(link.run(ids, rate / connections, stop)) for link in links]
    await asyncio.sleep(before_s)
    # Both on this (the main) thread, blocking the publishers for a moment: a child started from a worker
    # thread would get its parent-death signal when that thread ends (ioc.processes.spawn).
    stack.mosquitto.stop()
    await asyncio.sleep(down_s)
    stack.mosquitto.start(stack.state_dir / "logs" / "mosquitto-restarted.log")
    await asyncio.sleep(after_s)
    stop.set()
    await asyncio.gather(*tasks)

    result = RestartResult(
        sent=sum(link.sent for link in links),
        acked=sum(len(s) for s in acked.values()),
        reconnects=sum(link.reconnects for link in links),
    )
    began = time.monotonic()
    conn = await asyncpg.connect(stack.database_url)
    try:
        while True:
            rows = await conn.fetch(
                "SELECT device_id, seq, count(*) AS n FROM measurements "
                "WHERE metric = 'water_level_cm' AND device_id = ANY($1::text[]) GROUP BY device_id, seq",
                ids,
            )
            index = {d: i for i, d in enumerate(ids)}
            stored = {(index[r["device_id"]], r["seq"]) for r in rows}
            result.stored_acked = sum(1 for d, s in acked.items() for seq in s if (d, seq) in stored)
            if result.lost == 0 or time.monotonic() - began > drain_timeout_s:
                break
            await asyncio.sleep(0.5)
        result.drain_s = time.monotonic() - began
        result.duplicates = sum(r["n"] - 1 for r in rows)
        result.stored_unacked = len(stored) - result.stored_acked
    finally:
        await conn.close()
    return result

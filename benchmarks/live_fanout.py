"""The live server's CPU per client and beat, fan-out only: deltas written by the hub vs woken send tasks.

``python benchmarks/live_fanout.py --clients 200 --beats 400``: every beat offers two deltas (``summary``
and ``zone:q1``, of the sizes a wall gets) to each client over real loopback sockets (a thread drains
them), once through each client's outbox and send task (how the route sent every delta before, and
still sends snapshots) and once through ``subscriber.deliver`` (the hub writes at once). It prints the
event loop thread's CPU time per client and beat: thread CPU, not wall time, so a busy machine moves it
less than a latency. Rounds alternate; medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dashboards.frames import Write  # noqa: E402
from dashboards.subscriber import Message, Outgoing, Subscriber, deliver  # noqa: E402

# The clients' side, in a process of its own (threads here would contend for the event loop's GIL): it accepts
# connections on a loopback port, prints the port, and reads and discards until stdin closes.
DRAIN = """
import selectors, socket, sys, threading
server = socket.create_server(("127.0.0.1", 0))
server.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(server, selectors.EVENT_READ)
print(server.getsockname()[1], flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), __import__("os")._exit(0)), daemon=True).start()
while True:
    for key, _ in sel.select():
        if key.fileobj is server:
            conn, _ = server.accept()
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
        elif not key.fileobj.recv(1 << 20):
            sel.unregister(key.fileobj)
"""


async def sender(sub: Subscriber, transport: asyncio.WriteTransport) -> None:
    """The route's send task, reduced to its frames path: wake, take, one write."""
    while True:
        await sub.wait(60.0)
        messages = sub.take()
        if messages:
            transport.write(b"".join(m.frame() for m in messages))


async def connect(clients: int, port: int) -> list[asyncio.WriteTransport]:
    """``clients`` loopback connections to the draining process, as asyncio transports."""
    loop = asyncio.get_running_loop()
    transports = []
    for _ in range(clients):
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        transports.append(transport)
    return transports  # type: ignore[return-value]


def writer(transport: asyncio.WriteTransport) -> Write:
    """A frame writer as ``dashboards.frames`` gives one: write now, say so."""

    def write(data: bytes) -> bool:
        transport.write(data)
        return True

    return write


async def run(mode: str, transports: list[asyncio.WriteTransport], beats: int, sizes: tuple[int, int]) -> float:
    """Thread CPU seconds per client and beat for ``mode`` (queued or direct)."""
    direct = mode == "direct"
    subs = [Subscriber(writer(t) if direct else None) for t in transports]
    tasks = [] if direct else [asyncio.create_task(sender(s, t)) for s, t in zip(subs, transports, strict=True)]
    for sub in subs:
        sub.watch("summary", Message("summary", "snapshot", {}))
        sub.watch("zone:q1", Message("zone:q1", "snapshot", {}))
        sub.take()
    await asyncio.sleep(0.1)
    started = time.thread_time()
    for beat in range(beats):
        messages = [
            Message("summary", "delta", {"n": beat, "pad": "x" * sizes[0]}),
            Message("zone:q1", "delta", {"n": beat, "pad": "y" * sizes[1]}),
        ]
        if direct:
            out: Outgoing = {sub: (messages, [{}, {}]) for sub in subs}
            deliver(out)
        else:
            for sub in subs:
                for message in messages:
                    sub.offer(message, {})
        await asyncio.sleep(0)  # the send tasks run here
        while any(s._pending for s in subs):
            await asyncio.sleep(0)
    spent = time.thread_time() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return spent / (beats * len(subs))


async def main(args: argparse.Namespace) -> None:
    """Alternate the two modes ``--rounds`` times and print medians."""
    peer = subprocess.Popen([sys.executable, "-c", DRAIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert peer.stdout is not None and peer.stdin is not None
    transports = await connect(args.clients, int(peer.stdout.readline()))
    results: dict[str, list[float]] = {"queued": [], "direct": []}
    for _ in range(args.rounds):
        for mode in results:
            results[mode].append(await run(mode, transports, args.beats, (args.summary_bytes, args.zone_bytes)))
    for transport in transports:
        transport.close()
    peer.stdin.close()
    peer.wait(10)
    one, five, fifteen = os.getloadavg()
    for mode, values in results.items():
        print(
            f"{mode}: {statistics.median(values) * 1e6:.1f} µs CPU per client and beat "
            f"[{min(values) * 1e6:.1f}..{max(values) * 1e6:.1f}], {args.clients} clients, medians of {args.rounds}"
        )
    print(f"load average {one:.2f} {five:.2f} {fifteen:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--beats", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--summary-bytes", type=int, default=1500)
    parser.add_argument("--zone-bytes", type=int, default=800)
    asyncio.run(main(parser.parse_args()))

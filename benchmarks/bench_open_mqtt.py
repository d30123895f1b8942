"""What the open data's MQTT push costs the ingest, and how fast it is.

A private stack takes a steady load of canonical flood telemetry (``ioc simulate --load``) from public devices.
Three phases of ``--seconds`` each: without ``ioc open``, with it (and the public broker, and one anonymous
subscriber of ``v1.1/#``), and without it again. Each phase prints the rows the ingest stored per second and its CPU
per stored row; the middle one also the Observations pushed, their latency (the reading's time -> arrival at the
subscriber) and ``ioc open``'s and the public broker's CPU.

    .venv/bin/python benchmarks/bench_open_mqtt.py --rate 1000 --devices 1000 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import ioc, private_stack  # noqa: E402

from ioc.processes import Child  # noqa: E402
from ioc.up import Stack, wait_http  # noqa: E402


class Subscriber:
    """An anonymous subscriber of ``v1.1/#``: counts the Observations and their latency."""

    def __init__(self, port: int) -> None:
        self.latencies: list[float] = []
        self.ids: set[str] = set()
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
        self.client.on_connect = lambda c, *_: c.subscribe("v1.1/#")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        at = time.time()
        body = json.loads(msg.payload)
        observed = datetime.fromisoformat(body["phenomenonTime"].split("/")[0])
        with self.lock:
            self.latencies.append(at - observed.timestamp())
            self.ids.add(body["@iot.id"])

    def take(self) -> list[float]:
        """The latencies since the last call."""
        with self.lock:
            got, self.latencies = self.latencies, []
        return got

    def stop(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def rows(stack: Stack) -> int:
    """Measurements stored so far."""
    assert stack.postgres is not None
    return int(stack.postgres.psql("SELECT count(*) FROM measurements"))


def cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its children."""
    proc = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])


def phase(name: str, stack: Stack, ingest: Child, seconds: float, extra: dict[str, int]) -> None:
    """One phase: the ingest's stored rows per second and CPU per row (and ``extra`` processes' CPU)."""
    load = os.getloadavg()[0]
    rows0, cpu0, t0 = rows(stack), cpu(ingest.proc.pid), time.monotonic()
    extra0 = {k: cpu(pid) for k, pid in extra.items()}
    time.sleep(seconds)
    stored, used, took = rows(stack) - rows0, cpu(ingest.proc.pid) - cpu0, time.monotonic() - t0
    others = ", ".join(f"{k} {cpu(pid) - extra0[k]:.2f} s CPU" for k, pid in extra.items())
    print(
        f"[{name}] ingest stored {stored / took:,.0f} rows/s, {used / max(stored, 1) * 1e6:.0f} µs CPU per row "
        f"(load average {load:.1f} -> {os.getloadavg()[0]:.1f}){'; ' + others if others else ''}",
        flush=True,
    )


def completeness(stack: Stack, pushed: set[str], start: float, end: float) -> str:
    """How many of the public readings stored with a time in [start, end] the subscriber received."""
    assert stack.postgres is not None
    stored = stack.postgres.psql(
        "SELECT device_id || ':' || metric || ':' || floor(extract(epoch FROM time) * 1000)::bigint "
        "FROM measurements WHERE metric IN ('water_level_cm', 'rainfall_mm_h') "
        f"AND time BETWEEN to_timestamp({start}) AND to_timestamp({end})"
    ).split()
    return f"received {len(pushed.intersection(stored)):,} of the {len(stored):,} public readings of the phase's middle"


def ms(values: list[float]) -> str:
    """Median, p95 and p99 in milliseconds."""
    if not values:
        return "none"
    ordered = sorted(values)
    p95, p99 = ordered[int(0.95 * (len(ordered) - 1))], ordered[int(0.99 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"


def main(args: argparse.Namespace) -> None:
    """Run the three phases on a private stack, then remove it."""
    os.environ["IOC_OPEN_BULK_JOB"] = "false"
    stack = private_stack("bench-open-mqtt", devices=args.devices, fast_db=True)
    try:
        ingest = ioc(stack, "ingest", "ingest", "--client-id", "bench-ingest", "--metrics-port", "0")
        duration = str(int(3 * args.seconds + 60))
        ioc(stack, "simulate", "simulate", "--load", str(args.rate), "--devices", str(args.devices),
            "--duration", duration)  # fmt: skip
        time.sleep(5.0)
        phase("without ioc open", stack, ingest, args.seconds, {})
        opened = stack.start_open_data()
        wait_http(f"http://127.0.0.1:{stack.open_port}/open/health", 60, opened)
        assert stack.public_mosquitto is not None and stack.public_mosquitto.child is not None
        subscriber = Subscriber(stack.public_mosquitto.port)
        time.sleep(2.0)
        subscriber.take()
        extra = {"ioc open": opened.proc.pid, "public broker": stack.public_mosquitto.child.proc.pid}
        started = time.time()
        phase("with ioc open pushing", stack, ingest, args.seconds, extra)
        pushed = subscriber.take()
        print(f"[with ioc open pushing] {len(pushed) / args.seconds:,.0f} Observations/s pushed, reading -> "
              f"subscriber {ms(pushed)}", flush=True)  # fmt: skip
        time.sleep(10.0)  # the stragglers of the phase
        print(f"[with ioc open pushing] {completeness(stack, subscriber.ids, started + 5, started + args.seconds - 5)}")
        subscriber.stop()
        stack.children.pop("open").stop()
        phase("without ioc open, again", stack, ingest, args.seconds, {})
    finally:
        stack.stop()
        shutil.rmtree(stack.state_dir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=1000, help="load messages a second (one reading each)")
    p.add_argument("--devices", type=int, default=1000, help="public flood devices sending them")
    p.add_argument("--seconds", type=float, default=30, help="length of each phase")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())

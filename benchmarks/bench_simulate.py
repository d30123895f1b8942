"""Simulator benchmarks.

Load mode: 10,000 QoS 1 msg/s for 20 s from one process into a private Mosquitto, three times.
``.venv/bin/python benchmarks/bench_simulate.py [--rate 10000] [--seconds 20] [--runs 3]`` prints the
achieved publish rate (median of the runs), PUBACKs and what a mosquitto_sub subscriber received.
(The history of a first ``ioc up`` has its own bench: benchmarks/bench_backfill.py.)"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ioc.broker import EmbeddedMosquitto
from ioc.processes import free_port
from simulators.load import LoadResult, run_load


def subscriber(port: int, out: Path) -> subprocess.Popen[bytes]:
    """mosquitto_sub writing one line per received telemetry message."""
    handle = out.open("wb")
    return subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-t",
            "ioc/v1/flood/+/telemetry",
            "-F",
            "%t",
        ],
        stdout=handle,
    )


def one_run(
    port: int, rate: float, seconds: float, devices: int, connections: int, work: Path, n: int
) -> tuple[LoadResult, int]:
    """One load run with a counting subscriber; returns the manifest and the subscriber's count."""
    lines = work / f"received-{n}.txt"
    sub = subscriber(port, lines)
    time.sleep(0.5)
    result = asyncio.run(run_load(f"mqtt://127.0.0.1:{port}", rate, devices, seconds, 1, connections, seed=n))
    deadline = time.monotonic() + 15
    received = 0
    while time.monotonic() < deadline:
        received = lines.read_bytes().count(b"\n")
        if received >= result.sent:
            break
        time.sleep(0.25)
    sub.terminate()
    sub.wait(5)
    return result, lines.read_bytes().count(b"\n")


def main() -> None:
    """Start a private broker, run the load several times, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("mosquitto_sub") is None:
        raise SystemExit("mosquitto_sub is needed for the receiving side")
    work = Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    broker = EmbeddedMosquitto(work / "mosquitto", free_port())
    broker.start(work / "mosquitto.log")
    rates, rows = [], []
    try:
        for n in range(args.runs):
            result, received = one_run(broker.port, args.rate, args.seconds, args.devices, args.connections, work, n)
            rates.append(result.rate_achieved)
            rows.append((result, received))
            print(
                f"run {n + 1}: sent {result.sent:,} at {result.rate_achieved:,.0f} msg/s, "
                f"PUBACK {result.acked:,}, subscriber received {received:,}, "
                f"connection errors {result.errors}"
            )
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"target {args.rate:,.0f} msg/s QoS 1 for {args.seconds:.0f} s over {args.connections} connections: "
        f"median achieved {statistics.median(rates):,.0f} msg/s; "
        f"PUBACK {sum(r.acked for r, _ in rows):,} of {sum(r.sent for r, _ in rows):,} sent; "
        f"subscriber received {sum(n for _, n in rows):,}"
    )


if __name__ == "__main__":
    main()

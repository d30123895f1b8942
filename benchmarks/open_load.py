"""Public open data load (``bench_live.py --open-clients N`` runs it in a child process): N concurrent clients
asking the SensorThings bar queries in turn for ``--seconds``; prints their latencies and status codes.

The queries: the latest observation of every raw Datastream (one page of up to 1,000), one Datastream's last
24 h, and one hourly-mean Datastream's last week, for the devices named by ``--devices``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx


def queries(devices: list[str]) -> list[tuple[str, str]]:
    """(label, path) of the mix, one device each for the per-Datastream queries."""
    now = datetime.now(UTC)
    day = (now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    week = (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    device = random.choice(devices)
    return [
        ("latest", "/Datastreams?$top=1000&$filter=properties/resolution eq 'raw'&$select=id,Observations"
                   "&$expand=Observations($top=1;$orderby=phenomenonTime desc;$select=phenomenonTime,result)"),
        ("24h", f"/Datastreams('{device}:water_level_cm')/Observations?$top=2000&$orderby=phenomenonTime"
                f"&$filter=phenomenonTime gt {day}&$select=phenomenonTime,result"),
        ("week", f"/Datastreams('{device}:water_level_cm.hourly_mean')/Observations?$top=200"
                 f"&$orderby=phenomenonTime&$filter=phenomenonTime ge {week}&$select=phenomenonTime,result"),
    ]  # fmt: skip


async def client(http: httpx.AsyncClient, devices: list[str], until: float, times: dict[str, list[float]],
                 codes: Counter[str]) -> None:  # fmt: skip
    """One public client: the mix in turn, back to back; told to come back later (429, 503 with Retry-After), it
    waits that long first, as HTTP clients' retry policies do."""
    while time.monotonic() < until:
        for label, path in queries(devices):
            t0 = time.perf_counter()
            try:
                resp = await http.get(path)
                codes[str(resp.status_code)] += 1
            except httpx.HTTPError as exc:
                codes[type(exc).__name__] += 1
                continue
            if resp.status_code in {429, 503} and "Retry-After" in resp.headers:
                await asyncio.sleep(min(float(resp.headers["Retry-After"]), max(0.0, until - time.monotonic())))
                continue
            times.setdefault(label, []).append(time.perf_counter() - t0)


async def main(args: argparse.Namespace) -> None:
    """Run the clients, then print the figures."""
    devices = [f"{args.prefix}{i:05d}" for i in range(1, args.devices + 1)]
    times: dict[str, list[float]] = {}
    codes: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=args.base, timeout=30, limits=limits) as http:
        until = time.monotonic() + args.seconds
        await asyncio.gather(*(client(http, devices, until, times, codes) for _ in range(args.clients)))
    total = sum(codes.values())
    print(f"[open] {args.clients} public clients for {args.seconds:.0f} s: {total} requests "
          f"({total / args.seconds:.0f}/s), status {dict(sorted(codes.items()))}")  # fmt: skip
    for label, values in times.items():
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"[open]   {label}: median {statistics.median(values) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
              f"max {ordered[-1] * 1000:.0f} ms (n={len(values)})")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the SensorThings root, http://host:port/sta/v1.1")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=40)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--prefix", default="LOAD-")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))

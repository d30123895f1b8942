"""Public open data load (``bench_open_isolation.py`` and ``bench_live.py --open-clients N`` run it in a child
process): N concurrent clients asking the SensorThings bar queries in turn until ``--seconds`` pass or SIGTERM;
prints their latencies, what was served and what was refused.

The queries: the latest observation of every raw Datastream (one page of up to 1,000), one Datastream's last
24 h, and one hourly-mean Datastream's last week, for the devices named by ``--devices``. A refused request
(429, or 503 with Retry-After) waits what Retry-After says before the client goes on, as HTTP clients' retry
policies do; ``--nice 19`` runs the clients at the lowest CPU priority (clients on other machines, approximated).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
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


def outcome(resp: httpx.Response) -> str:
    """The status, with a 503's reason: ``busy`` (shed or no pool connection) or ``time-out`` (statement cut)."""
    if resp.status_code != 503:
        return str(resp.status_code)
    return "503 time-out" if "ran longer than" in resp.text else "503 busy"


async def client(http: httpx.AsyncClient, devices: list[str], stop: asyncio.Event, times: dict[str, list[float]],
                 codes: Counter[str]) -> None:  # fmt: skip
    """One public client: the mix in turn, back to back; told to come back later (429, 503 with Retry-After), it
    waits that long first."""
    while not stop.is_set():
        for label, path in queries(devices):
            t0 = time.perf_counter()
            try:
                resp = await http.get(path)
                codes[outcome(resp)] += 1
            except httpx.HTTPError as exc:
                codes[type(exc).__name__] += 1
                continue
            if resp.status_code in {429, 503} and "Retry-After" in resp.headers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), float(resp.headers["Retry-After"]))
                continue
            times.setdefault(label, []).append(time.perf_counter() - t0)
            if stop.is_set():
                return


def pct(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(clients: int, seconds: float, times: dict[str, list[float]], codes: Counter[str]) -> dict[str, object]:
    """The figures: requests, served (200) and refused per second, and latency per query and overall (served)."""
    total = sum(codes.values())
    every = sorted(v for values in times.values() for v in values)
    per_query = {
        label: {"n": len(values), "p50_ms": statistics.median(values) * 1000,
                "p95_ms": pct(sorted(values), 0.95) * 1000, "max_ms": max(values) * 1000}
        for label, values in times.items()
    }  # fmt: skip
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": total,
        "served": codes.get("200", 0),
        "refused": sum(n for code, n in codes.items() if code in {"429", "503 busy"}),
        "timed_out": codes.get("503 time-out", 0),
        "codes": dict(sorted(codes.items())),
        "p50_ms": statistics.median(every) * 1000 if every else None,
        "p95_ms": pct(every, 0.95) * 1000 if every else None,
        "max_ms": every[-1] * 1000 if every else None,
        "queries": per_query,
    }


def describe(figures: dict[str, object]) -> str:
    """The figures as lines of text."""
    seconds = float(figures["seconds"])  # type: ignore[arg-type]
    lines = [
        f"[open] {figures['clients']} public clients for {seconds:.0f} s: {figures['requests']} requests, "
        f"{figures['served']} served ({int(figures['served']) / seconds:.1f}/s), {figures['refused']} refused, "  # type: ignore[call-overload]
        f"{figures['timed_out']} cut at the statement time-out; status {figures['codes']}"
    ]
    for label, q in figures["queries"].items():  # type: ignore[attr-defined]
        lines.append(f"[open]   {label}: median {q['p50_ms']:.0f} ms, p95 {q['p95_ms']:.0f} ms, "
                     f"max {q['max_ms']:.0f} ms (n={q['n']})")  # fmt: skip
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    """Run the clients until ``--seconds`` or SIGTERM, then print the figures."""
    if args.nice:
        os.nice(args.nice)
    devices = [f"{args.prefix}{i:05d}" for i in range(1, args.devices + 1)]
    times: dict[str, list[float]] = {}
    codes: Counter[str] = Counter()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(args.seconds, stop.set)
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=args.base, timeout=30, limits=limits) as http:
        await asyncio.gather(*(client(http, devices, stop, times, codes) for _ in range(args.clients)))
    figures = summary(args.clients, time.monotonic() - started, times, codes)
    print(describe(figures))
    if args.json:
        print("[open] json " + json.dumps(figures), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the SensorThings root, http://host:port/sta/v1.1")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=40, help="at most this long (SIGTERM ends it sooner)")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--prefix", default="LOAD-")
    p.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by this much")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))

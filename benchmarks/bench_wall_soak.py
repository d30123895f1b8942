"""Soak the operators' wall: a headless Chromium on /wall against a simulated city, heap sampled over time.

Its own embedded stack (PostgreSQL+TimescaleDB, Mosquitto) in a temporary folder on free ports, the
ingest, the live server and ``ioc simulate --speed 60``. Every ``--interval`` seconds it forces a
garbage collection in the page (CDP ``HeapProfiler.collectGarbage``) and reads ``Runtime.getHeapUsage``
plus the DOM node and listener counts. Prints the heap after the first minute, the maximum, the final
value and final / first-minute. No assertions: a ratio near 1 means no growth.

    make bench-wall                       # 30 minutes
    .venv/bin/python benchmarks/bench_wall_soak.py --minutes 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import CDPSession, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
from ioc import accounts  # noqa: E402
from ioc.cluster import remove_linked_clusters  # noqa: E402
from ioc.db import create_pool  # noqa: E402
from ioc.processes import free_port  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.up import Stack, wait_http  # noqa: E402
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

USER, PASSWORD = "soak-viewer", "soak viewer password"


def sample(cdp: CDPSession) -> dict[str, float]:
    """Heap after a forced GC, and the page's DOM nodes and event listeners."""
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {
        "heap_mb": heap["usedSize"] / 2**20,
        "nodes": metrics.get("Nodes", 0),
        "listeners": metrics.get("JSEventListeners", 0),
    }


def main() -> int:
    """Run the soak and print the heap figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the wall runs (default 30)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples (default 30)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulator speed (default 60)")
    parser.add_argument("--scenario", default="storm", help="simulator scenario (default storm)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ioc-soak-"))
    os.chmod(root, 0o755)
    settings = Settings(
        state_dir=root, db_port=free_port(), mqtt_port=free_port(), http_port=free_port(), environment="test"
    )
    stack = Stack(settings, fast_db=True)
    try:
        stack.prepare_state(reset=False)
        stack.start_services()
        stack.load_data(settings.fleet_file)
        asyncio.run(add_viewer(stack.database_url))
        stack.start_app("ingest", ["ingest"])
        serve = stack.start_app("serve", ["serve"])
        base = f"http://127.0.0.1:{settings.http_port}"
        wait_http(f"{base}/api/v1/health", 60, serve)
        stack.start_app("simulate", ["simulate", "--speed", str(args.speed), "--scenario", args.scenario])
        print(f"stack up in {root}; wall at {base}/wall; soaking {args.minutes:g} min", flush=True)
        samples = soak(f"{base}/wall", args.minutes * 60, args.interval)
    finally:
        stack.stop()
        remove_linked_clusters(root)  # root's cluster lives under /var/lib/ioc
        shutil.rmtree(root, ignore_errors=True)
    report(samples)
    return 0


async def add_viewer(database_url: str) -> None:
    """The account the soaking browser logs in with."""
    pool = await create_pool(database_url, max_size=1)
    try:
        async with pool.acquire() as conn:
            await accounts.create_user(conn, USER, "viewer", PASSWORD)
    finally:
        await pool.close()


def soak(url: str, seconds: float, interval: float) -> list[tuple[float, dict[str, float]]]:
    """Keep /wall open for ``seconds``, sampling every ``interval``."""
    samples: list[tuple[float, dict[str, float]]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--enable-precise-memory-info"])
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        base = url.rsplit("/", 1)[0]
        login = context.request.post(f"{base}/api/v1/auth/login", data={"name": USER, "password": PASSWORD})
        if login.status != 200:
            raise SystemExit(f"login failed: {login.status} {login.text()}")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector('#conn[data-state="live"]', timeout=30000)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        started = time.monotonic()
        print(f"{'t (s)':>8} {'heap MB':>9} {'nodes':>7} {'listeners':>10} {'conn':>12}", flush=True)
        while True:
            elapsed = time.monotonic() - started
            s = sample(cdp)
            conn = page.get_attribute("#conn", "data-state") or "?"
            samples.append((elapsed, s))
            print(f"{elapsed:8.0f} {s['heap_mb']:9.2f} {s['nodes']:7.0f} {s['listeners']:10.0f} {conn:>12}", flush=True)
            if elapsed >= seconds:
                break
            page.wait_for_timeout(min(interval, seconds - elapsed + 0.1) * 1000)
        if errors:
            print(f"page errors ({len(errors)}): {errors[:3]}", file=sys.stderr)
        browser.close()
    return samples


def report(samples: list[tuple[float, dict[str, float]]]) -> None:
    """Heap after the first minute, max, final and final / first-minute."""
    if not samples:
        print("no samples")
        return
    after_first = next((s for t, s in samples if t >= 60), samples[-1][1])
    peak = max(s["heap_mb"] for _, s in samples)
    final = samples[-1][1]
    print(
        f"\nheap after 1 min: {after_first['heap_mb']:.2f} MB   max: {peak:.2f} MB   "
        f"final: {final['heap_mb']:.2f} MB   final/1-min: {final['heap_mb'] / after_first['heap_mb']:.2f}"
    )
    print(
        f"DOM nodes after 1 min: {after_first['nodes']:.0f}   final: {final['nodes']:.0f}; "
        f"listeners after 1 min: {after_first['listeners']:.0f}   final: {final['listeners']:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())

"""The operators' wall in Chromium at 4K under the storm scenario: main-thread time per update, long frames, heap.

Its own embedded stack (PostgreSQL+TimescaleDB, Mosquitto) in a temporary folder on free ports, the ingest,
the live server and ``ioc simulate --speed 60 --scenario storm``. Then, ``--runs`` times, a fresh 3840x2160
page on /wall records a Chromium performance trace (devtools.timeline + toplevel) over ``--updates``
websocket updates, from which it computes:

- main-thread busy per update: the union of the renderer main thread's top-level tasks over the window
  divided by the websocket messages dispatched in it (the bar: under 8 ms), split into the message
  handlers, the coalesced redraws (timers), style and layout, paint;
- the longest task and the longest animation frame (the page's ``long-animation-frame`` entries: a frame
  that took longer than 100 ms is a dropped frame of that length).

Last, one page soaks for ``--minutes``: every ``--interval`` s a forced GC (``HeapProfiler.collectGarbage``)
then ``Performance.getMetrics`` (JSHeapUsedSize, DOM nodes, listeners); it prints the heap's least-squares
slope per 10 minutes after the first minute. ``--baseline REV`` serves the wall's JavaScript from git
revision REV in every other run (same stack, interleaved) and prints both sides' medians and their ratio.
No assertions.

    make bench-wall                                   # 3 trace runs, then a 30-minute heap soak
    .venv/bin/python benchmarks/bench_wall_trace.py --minutes 3 --baseline main
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
from common import discard_stack, median, progress  # noqa: E402
from wall_trace import TraceFigures, analyse, heap_slope  # noqa: E402

from ioc import accounts  # noqa: E402
from ioc.db import create_pool  # noqa: E402
from ioc.processes import free_port  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.up import Stack, wait_http  # noqa: E402
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

USER, PASSWORD = "wall-bench", "wall bench viewer password"
REPO = Path(__file__).resolve().parents[1]
CATEGORIES = [
    "toplevel",
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "disabled-by-default-devtools.timeline.frame",
    "v8.execute",
]
# Long animation frames as the page sees them (Chromium's LoAF API) and the websocket messages received, kept
# for the benchmark to read.
PAGE_PROBES = """
window.__messages = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) { super(...args); this.addEventListener("message", () => { window.__messages += 1; }); }
};
window.__loaf = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__loaf.push([e.startTime, e.duration, e.blockingDuration]);
}).observe({ type: "long-animation-frame", buffered: true });
"""


def main() -> int:
    """Start the stack, trace the wall ``--runs`` times, soak it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="trace runs (default 3; doubled with --baseline)")
    parser.add_argument("--updates", type=int, default=300, help="websocket messages per trace (default 300)")
    parser.add_argument("--seconds", type=float, default=60.0, help="longest trace (default 60)")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds live before tracing (default 20)")
    parser.add_argument("--minutes", type=float, default=3.0, help="heap soak length (default 3; the bar: 30)")
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between heap samples (default 20)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulator speed (default 60)")
    parser.add_argument("--scenario", default="storm", help="simulator scenario (default storm)")
    parser.add_argument("--size", default="3840x2160", help="viewport (default 3840x2160)")
    parser.add_argument("--baseline", help="git revision whose dashboards/static/js serves every other run")
    parser.add_argument("--profile", action="store_true", help="also print the JavaScript functions with most CPU")
    parser.add_argument("--save", type=Path, help="folder to keep each run's trace in (open it in DevTools)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    baseline = js_at(args.baseline) if args.baseline else None

    with wall_stack(args.speed, args.scenario) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--enable-precise-memory-info"])
        sides = ["change", "baseline"] if baseline else ["change"]
        results: dict[str, list[TraceFigures]] = {side: [] for side in sides}
        for run in range(args.runs):
            for side in sides if run % 2 == 0 else sides[::-1]:
                progress(f"run {run + 1}/{args.runs} ({side}), load average {load_average()}")
                figures = trace_run(browser, url, (width, height), args, baseline if side == "baseline" else None)
                print(f"run {run + 1} {side:>8}: {figures.line()}", flush=True)
                results[side].append(figures)
        for side in sides:
            summarise(side, results[side])
        if baseline:
            ratio = median([f.cpu_per_update_ms for f in results["change"]]) / median(
                [f.cpu_per_update_ms for f in results["baseline"]]
            )
            print(f"main-thread CPU per update, change / baseline ({args.baseline}): {ratio:.2f}")
        if args.minutes > 0:
            soak(browser, url, (width, height), args.minutes * 60, args.interval)
        browser.close()
    return 0


@contextmanager
def wall_stack(speed: float, scenario: str) -> Iterator[str]:
    """A private stack with the ingest, the live server and the simulator running; yields the wall's URL."""
    root = Path(tempfile.mkdtemp(prefix="ioc-wall-"))
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
        stack.start_app("simulate", ["simulate", "--speed", str(speed), "--scenario", scenario])
        progress(f"stack up in {root}; wall at {base}/wall ({scenario}, speed {speed:g})")
        yield f"{base}/wall"
    finally:
        discard_stack(stack, root)


async def add_viewer(database_url: str) -> None:
    """The account the benchmark's browser logs in with."""
    pool = await create_pool(database_url, max_size=1)
    try:
        async with pool.acquire() as conn:
            await accounts.create_user(conn, USER, "viewer", PASSWORD)
    finally:
        await pool.close()


def js_at(revision: str) -> dict[str, bytes]:
    """The files of dashboards/static/js at git ``revision``: URL path -> content."""
    prefix = "dashboards/static/js/"
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", revision, prefix], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    return {
        f"/static/js/{name[len(prefix) :]}": subprocess.run(
            ["git", "show", f"{revision}:{name}"], cwd=REPO, check=True, capture_output=True
        ).stdout
        for name in names
    }


def open_wall(
    browser: Browser, url: str, size: tuple[int, int], js: dict[str, bytes] | None
) -> tuple[BrowserContext, Page]:
    """A logged-in context and a page on the wall, live; ``js`` replaces the served JavaScript."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    base = url.rsplit("/", 1)[0]
    login = context.request.post(f"{base}/api/v1/auth/login", data={"name": USER, "password": PASSWORD})
    if login.status != 200:
        raise SystemExit(f"login failed: {login.status} {login.text()}")
    if js is not None:
        served = js

        def from_revision(route: Route) -> None:
            path = "/" + route.request.url.split("/", 3)[3].split("?")[0]
            if path in served:
                route.fulfill(status=200, body=served[path], content_type="text/javascript")
            else:
                route.continue_()

        context.route("**/static/js/**", from_revision)
    page = context.new_page()
    page.add_init_script(PAGE_PROBES)
    page.on("pageerror", lambda exc: progress(f"page error: {exc}"))
    page.goto(url, timeout=120000)
    page.wait_for_selector('#conn[data-state="live"]', timeout=60000)
    return context, page


def trace_run(
    browser: Browser, url: str, size: tuple[int, int], args: argparse.Namespace, js: dict[str, bytes] | None
) -> TraceFigures:
    """One fresh page: warm up, trace ``args.updates`` websocket updates, analyse the trace."""
    context, page = open_wall(browser, url, size, js)
    page.wait_for_timeout(args.warmup * 1000)
    loaf_from = page.evaluate("performance.now()")
    cdp = context.new_cdp_session(page)
    if args.profile:
        cdp.send("Profiler.enable")
        cdp.send("Profiler.start")
    browser.start_tracing(page=page, categories=CATEGORIES)
    first = page.evaluate("window.__messages")
    deadline = time.monotonic() + args.seconds
    received = 0
    while received < args.updates and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        received = page.evaluate("window.__messages") - first
    raw = browser.stop_tracing()
    if args.profile:
        print_profile(cdp.send("Profiler.stop")["profile"])
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        (args.save / f"wall-{time.strftime('%H%M%S')}{'-baseline' if js else ''}.json").write_bytes(raw)
    trace = json.loads(raw)
    frames = page.evaluate("(from) => window.__loaf.filter((e) => e[0] >= from)", loaf_from)
    context.close()
    return analyse(trace, frames, received)


def print_profile(profile: dict[str, Any]) -> None:
    """The JavaScript functions with the most self time in a CDP CPU profile (url:line function)."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas") or []
    self_us: dict[str, float] = {}
    for node_id, delta in zip(profile.get("samples") or [], deltas, strict=False):
        frame = nodes[node_id]["callFrame"]
        key = f"{frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber'] + 1} {frame['functionName'] or '(anonymous)'}"
        self_us[key] = self_us.get(key, 0.0) + delta
    total = sum(self_us.values()) or 1.0
    print("  JavaScript self time (sampled):")
    for key, us in sorted(self_us.items(), key=lambda kv: -kv[1])[:25]:
        print(f"    {us / 1000:8.1f} ms {us / total * 100:5.1f} %  {key}")


def summarise(side: str, runs: list[TraceFigures]) -> None:
    """Medians and spreads (min-max) over the runs of one side."""

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    print(f"\n{side}: medians of {len(runs)} runs (min-max)")
    print(f"  updates/s                 {spread([f.messages / f.seconds for f in runs])}")
    print(f"  main-thread CPU/update    {spread([f.cpu_per_update_ms for f in runs])} ms   (bar: < 8 ms)")
    for part in runs[0].parts:
        print(f"    {part:<23} {spread([f.parts[part] for f in runs])} ms")
    print(f"  main-thread busy/update   {spread([f.busy_per_update_ms for f in runs])} ms   (wall clock)")
    print(f"  main thread busy          {spread([f.busy_share * 100 for f in runs])} % of the window")
    print(f"  longest task              {spread([f.longest_task_ms for f in runs])} ms")
    print(f"  longest task, CPU         {spread([f.longest_task_cpu_ms for f in runs])} ms")
    print(f"  longest frame (LoAF)      {spread([f.longest_frame_ms for f in runs])} ms   (bar: < 100 ms)")
    print(f"  frames over 100 ms        {spread([float(f.frames_over_100) for f in runs])}")


def soak(browser: Browser, url: str, size: tuple[int, int], seconds: float, interval: float) -> None:
    """One page for ``seconds``: heap after a forced GC, DOM nodes and listeners every ``interval``."""
    context, page = open_wall(browser, url, size, None)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    print(f"\nheap soak, {seconds / 60:g} min, load average {load_average()}")
    print(f"{'t (s)':>8} {'heap MB':>9} {'nodes':>7} {'listeners':>10} {'conn':>8}", flush=True)
    while True:
        elapsed = time.monotonic() - started
        cdp.send("HeapProfiler.collectGarbage")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        heap = metrics["JSHeapUsedSize"] / 2**20
        samples.append((elapsed, heap))
        conn = page.get_attribute("#conn", "data-state") or "?"
        print(
            f"{elapsed:8.0f} {heap:9.2f} {metrics['Nodes']:7.0f} {metrics['JSEventListeners']:10.0f} {conn:>8}",
            flush=True,
        )
        if elapsed >= seconds:
            break
        page.wait_for_timeout(min(interval, seconds - elapsed + 0.1) * 1000)
    context.close()
    after_first = [(t, h) for t, h in samples if t >= 60] or samples
    print(
        f"heap after 1 min {after_first[0][1]:.2f} MB, max {max(h for _, h in samples):.2f} MB, "
        f"final {samples[-1][1]:.2f} MB; slope after the first minute {heap_slope(after_first):+.3f} MB per 10 min"
    )


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())

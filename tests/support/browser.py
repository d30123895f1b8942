"""Fixtures for the browser tests: the live server (ingest + ``ioc serve``) and a real headless Chromium.

A plugin (tests/conftest.py's ``pytest_plugins``); the users are ``people`` from tests/support/auth.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, async_playwright

from ioc.fleet import load_fleet
from ioc.processes import Child, free_port
from ioc.up import Stack
from tests.support.auth import PASSWORD
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.stack import ARTIFACTS, Broker, mosquitto_pub, until

SCREENSHOTS = ARTIFACTS / "screenshots"
HEARTBEAT_S = 2.0  # short, so "stale data" (no message for 2 heartbeats) can be seen within a test


@dataclass
class LiveServer:
    """``ioc serve`` on its own port (restartable on the same port) and an ingest worker."""

    start: Callable[..., Child]
    port: int
    child: Child | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start ``ioc serve`` and wait until its health answers."""
        self.child = self.start(
            f"serve-pages-{self.restarts}",
            "serve",
            "--port",
            str(self.port),
            env={"IOC_WS_HEARTBEAT_S": str(HEARTBEAT_S)},
        )
        self.restarts += 1
        wait_http(f"{self.url}/api/v1/health", self.child)

    def stop(self) -> None:
        """Stop the server process (the port closes; browsers see the websocket drop)."""
        if self.child is not None:
            self.child.stop()
            self.child = None


def wait_http(url: str, child: Child, timeout: float = 40.0) -> None:
    """Wait for ``url`` to answer at all (any status), failing early if ``child`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            log = child.log.name if child.log else "?"
            pytest.fail(f"ioc serve exited with {child.proc.returncode}; log: {log}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own localhost URL
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def live_server(stack: Stack, run_ioc: Callable[..., Child], ingest: Child) -> Iterator[LiveServer]:
    """The API/pages server of the test stack on a port of its own, fed by the session's ingest worker.

    Per module: a server left running would hold the alert engine's leadership (one leader per database)
    with the default rules, and test_alerts' servers with its own rules would never lead.
    """
    server = LiveServer(start=run_ioc, port=free_port())
    server.launch()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def populated(
    live_server: LiveServer, run_ioc: Callable[..., Child], pool: asyncpg.Pool, stack: Stack
) -> AsyncIterator[None]:
    """The simulated city (storm scenario) publishing during the module's tests: screens show real data."""
    fleet = [d.device_id for d in load_fleet(stack.settings.fleet_file).devices]
    started = await pool.fetchval("SELECT now()")
    child = run_ioc("simulate-pages", "simulate", "--scenario", "storm", "--speed", "60", "--seed", "7")

    async def all_reported() -> bool:
        sql = "SELECT count(*) FROM devices WHERE device_id = ANY($1) AND last_seen >= $2"
        return await pool.fetchval(sql, fleet, started) == len(fleet)

    await until(all_reported, 60, 0.2, f"every one of the {len(fleet)} devices of the fleet reporting")
    yield
    child.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless."""
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class Watched:
    """A page and every problem it reported: console errors, failed requests, HTTP >= 400."""

    page: Page
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Fail with the list of problems, if any."""
        assert not self.problems, "page problems:\n" + "\n".join(self.problems)


async def open_watched(
    browser: Browser,
    url: str,
    *,
    width: int = 1920,
    height: int = 1080,
    login: tuple[str, str] | None = None,
    **kwargs: Any,
) -> tuple[BrowserContext, Watched]:
    """A fresh context (logged in on ``login``'s (server, user) when given) with ``url`` open and its problems
    tracked; the caller closes the context."""
    context = await browser.new_context(viewport={"width": width, "height": height}, **kwargs)
    if login is not None:
        resp = await context.request.post(
            f"{login[0]}/api/v1/auth/login", data={"name": login[1], "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
    page = await context.new_page()
    watched = Watched(page)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            watched.problems.append(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def on_failed(req: Request) -> None:
        watched.problems.append(f"request failed: {req.method} {req.url} {req.failure}")

    def on_response(resp: Response) -> None:
        if resp.status >= 400:
            watched.problems.append(f"HTTP {resp.status}: {resp.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.problems.append(f"page error: {exc}"))
    page.on("request", lambda req: watched.requests.append(req.url))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    await page.goto(url)
    return context, watched


@pytest_asyncio.fixture(loop_scope="session")
async def open_page(
    browser: Browser, live_server: LiveServer, people: dict[str, str]
) -> AsyncIterator[Callable[..., Any]]:
    """Open pages in fresh contexts, logged in as ``role`` (None: not logged in), with problem tracking."""
    contexts = []

    async def opener(
        url: str, width: int = 1920, height: int = 1080, role: str | None = "operator", **kwargs: Any
    ) -> Watched:
        login = (live_server.url, people[role]) if role is not None else None
        context, watched = await open_watched(browser, url, width=width, height=height, login=login, **kwargs)
        contexts.append(context)
        return watched

    yield opener
    for context in contexts:
        await context.close()


def publish_online(broker: Broker, device_id: str) -> None:
    """Announce the device online (retained), as a device does when it connects."""
    mosquitto_pub(broker, f"ioc/v1/flood/{device_id}/status", b"online", retain=True)


def publish_level(broker: Broker, device_id: str, level_cm: float, *, ago_s: float = 0.0) -> None:
    """Publish one canonical flood reading, as a field device would."""
    ts = (datetime.now(UTC) - timedelta(seconds=ago_s)).isoformat().replace("+00:00", "Z")
    payload = json.dumps({"ts": ts, "metrics": {"water_level_cm": level_cm}}).encode()
    mosquitto_pub(broker, f"ioc/v1/flood/{device_id}/telemetry", payload)


async def wait_live(page: Page, timeout_ms: float = 45000) -> None:
    """Wait until the page's connection indicator says live: a deadline, not a wait (on the shared 2-core
    machine at a load average of 15-19, a wall with the simulated city running took 6-34 s to go live)."""
    await page.wait_for_selector('#conn[data-state="live"]', timeout=timeout_ms)


async def settle(seconds: float) -> None:
    """Let the page run (without blocking the event loop that drives the browser)."""
    await asyncio.sleep(seconds)


# Checked inside the page: every panel's content fits its box (or the overflow is an intended scroll
# container), no two panels intersect, and nothing extends past the viewport.
LAYOUT_CHECK = """
(panelSelector) => {
  const problems = [];
  const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
  const panels = [...document.querySelectorAll(panelSelector)].filter((p) => p.offsetParent !== null);
  const boxes = panels.map((p) => [p, p.getBoundingClientRect()]);
  const name = (p) => p.id || p.className;
  for (const [p, r] of boxes) {
    if (r.left < -0.5 || r.top < -0.5 || r.right > vw + 0.5 || r.bottom > vh + 0.5)
      problems.push(`${name(p)} extends past the viewport: ${JSON.stringify(r)}`);
    for (const el of [p, ...p.querySelectorAll("*")]) {
      if (el.offsetParent === null && el !== p) continue;
      const style = getComputedStyle(el);
      const scrolls = /(auto|scroll)/.test(style.overflowY + style.overflowX);
      const clipped = el.classList.contains("scroll") || scrolls || el.closest(".js-plotly-plot, svg");
      if (clipped && el !== p) continue;
      const what = `${name(p)} > ${el.tagName}.${el.className}`;
      const ellipsis = style.textOverflow === "ellipsis";
      if (el.scrollWidth > el.clientWidth + 1 && style.overflowX !== "visible" && !ellipsis)
        problems.push(`${what} overflows horizontally (${el.scrollWidth} > ${el.clientWidth})`);
      const tall = el.scrollHeight > el.clientHeight + 1 && el.clientHeight > 0;
      if (tall && style.overflowY !== "visible" && !scrolls)
        problems.push(`${what} overflows vertically (${el.scrollHeight} > ${el.clientHeight})`);
    }
  }
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    if (a.contains(b) || b.contains(a)) continue;
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 0.5 && h > 0.5) problems.push(`${name(a)} and ${name(b)} overlap`);
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > vw + 1) problems.push(`page wider than the viewport (${doc.scrollWidth} > ${vw})`);
  if (doc.scrollHeight > vh + 1) problems.push(`page taller than the viewport (${doc.scrollHeight} > ${vh})`);
  return problems;
}
"""


def screenshot_path(name: str) -> Path:
    """Where a screenshot goes (the folder is created and printed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {SCREENSHOTS}")
    return SCREENSHOTS / name

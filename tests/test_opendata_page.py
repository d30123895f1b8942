"""The public /open page in a real Chromium: no login, both languages, datasets and files from the server,
working links, and keyboard use (skip link, language toggle, focusable code samples)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from dashboards.pages import catalogue
from tests.opendata_fixtures import build_bulk, open_data_fixture, policy_file, start_server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="module")
def server(run_ioc, app_env, module_scratch_dir, open_data) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server with the test policy and bulk files written."""
    folder: Path = module_scratch_dir("ioc-od-page-")
    assert build_bulk(app_env, folder / "bulk", policy_file(folder)).returncode == 0
    yield from start_server(run_ioc, folder)


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous(browser: Browser) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page in a fresh context without a session, and the problems it reports."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    # A reload (the language toggle) cancels what the old page still had in flight (its icon): not a failure.
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}")
            if r.failure != "net::ERR_ABORTED" else None)  # fmt: skip
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    yield page, problems
    await context.close()


async def test_the_page_lists_datasets_files_and_licence_without_login(
    server: str, anonymous: tuple[Page, list[str]]
) -> None:
    page, problems = anonymous
    response = await page.goto(f"{server}/open?lang=vi")
    assert response is not None and response.status == 200 and page.url == f"{server}/open?lang=vi"
    await page.wait_for_selector("body[data-ready='1']", timeout=15000)
    vi = catalogue("vi")
    assert await page.get_attribute("html", "lang") == "vi"
    assert await page.inner_text("h1") == vi["open.heading"]
    assert await page.title() == vi["title.open"]
    headings = await page.eval_on_selector_all("h1, h2", "els => els.map(e => e.tagName + ':' + e.textContent)")
    assert headings[0] == f"H1:{vi['open.heading']}" and len(headings) == 7
    assert all(h.split(":", 1)[1] for h in headings)
    # Each dataset of the policy, with its metrics and its files' links.
    for kind in ("flood", "traffic", "camera"):
        assert await page.is_visible(f"#dataset-{kind} h3")
    assert "water_level_cm (cm)" in await page.inner_text("#dataset-flood")
    links = await page.eval_on_selector_all("#dataset-flood a[href^='/open/bulk/']", "as => as.map(a => a.href)")
    assert {link.rsplit(".", 1)[-1] for link in links} == {"gz", "parquet", "geojson"}
    assert await page.get_attribute("#licence-link", "href") == "https://creativecommons.org/licenses/by/4.0/"
    assert await page.inner_text("#column-list") and "120" in await page.inner_text("#limit-anonymous")
    assert server in await page.inner_text("#example-curl")
    async with httpx.AsyncClient(timeout=30) as http:
        for link in [*links, f"{server}/open/catalog.ttl", f"{server}/open/catalog.jsonld"]:
            assert (await http.get(link)).status_code == 200, link
    # Every section is named by its heading; every image has a text alternative.
    unnamed = await page.eval_on_selector_all(
        "section", "ss => ss.filter(s => !document.getElementById(s.getAttribute('aria-labelledby'))).length"
    )
    assert unnamed == 0 and await page.eval_on_selector_all("img:not([alt])", "is => is.length") == 0
    assert problems == [], problems


async def test_keyboard_skip_link_language_toggle_and_code(server: str, anonymous: tuple[Page, list[str]]) -> None:
    page, problems = anonymous
    await page.goto(f"{server}/open?lang=vi")
    await page.wait_for_selector("body[data-ready='1']", timeout=15000)
    await page.keyboard.press("Tab")
    await page.wait_for_selector("a.skip:focus", timeout=5000)  # focus moves within a frame or two
    assert await _focused(page) == {"tag": "A", "id": "", "text": catalogue("vi")["open.skip"]}
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#main:focus", timeout=5000)
    assert (await _focused(page))["id"] == "main"
    # The samples scroll sideways: each is reachable from the keyboard.
    assert await page.eval_on_selector_all("pre", "ps => ps.every(p => p.tabIndex === 0)")
    await page.focus("#lang-toggle")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("html[lang='en']", state="attached", timeout=15000)
    await page.wait_for_selector("body[data-ready='1']", timeout=15000)
    en = catalogue("en")
    assert await page.inner_text("h1") == en["open.heading"]
    assert en["open.datasets"] in await page.inner_text("#h-datasets")
    stored = await page.evaluate("localStorage.getItem('ioc.lang')")
    assert json.dumps(stored) == '"en"'
    assert problems == [], problems


async def _focused(page: Page) -> dict[str, Any]:
    return dict(await page.evaluate(
        "() => ({tag: document.activeElement.tagName, id: document.activeElement.id,"
        " text: document.activeElement.textContent.trim()})"
    ))  # fmt: skip

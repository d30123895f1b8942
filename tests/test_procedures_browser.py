"""Editing a procedure in Chromium (``/procedures``): an admin changes a step and a limit, adds a step, saves a new
version; a wrong edit is refused with the field named; others read it without controls; Vietnamese and English."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page

from tests.support.auth import PASSWORD
from tests.support.stack import serving

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SOP = """
type: t_page
version: 1
name: {vi: Thử trang, en: Page test}
limits: {acknowledge_min: {critical: 5}}
steps:
  - {id: look, text: {vi: Xem camera, en: Look at the cameras}}
  - {id: call, required: false, text: {vi: Gọi điện, en: Phone}}
"""


@pytest.fixture(scope="module")
def server(run_ioc: Any, module_scratch_dir: Callable[[str], Path]) -> Iterator[str]:
    """``ioc serve`` with a procedure of this module's own (editions of it touch no other test)."""
    folder = module_scratch_dir("ioc-test-sop-") / "sop"
    folder.mkdir()
    (folder / "t_page.yaml").write_text(SOP, encoding="utf-8")
    with serving(run_ioc, "serve-procedures", env={"IOC_SOP_DIR": str(folder)}) as base:
        yield base


@pytest.fixture
async def opener(browser: Browser, server: str, people: dict[str, str]) -> AsyncIterator[Callable[..., Any]]:
    """Open a page logged in as ``role``."""
    contexts = []

    async def open_as(path: str, role: str) -> Page:
        context = await browser.new_context(viewport={"width": 1920, "height": 1080})
        contexts.append(context)
        resp = await context.request.post(
            f"{server}/api/v1/auth/login", data={"name": people[role], "password": PASSWORD}
        )
        assert resp.status == 200
        page = await context.new_page()
        await page.goto(server + path)
        await page.wait_for_selector("body[data-ready='true']")
        return page

    yield open_as
    for context in contexts:
        await context.close()


async def test_an_admin_saves_a_new_version_in_the_browser(opener: Any, pool: asyncpg.Pool) -> None:
    page = await opener("/procedures?type=t_page", "admin")
    assert await page.text_content("h1") == "Quy trình xử lý sự cố"
    assert await page.get_attribute("body", "data-version") == "1"
    rows = page.locator("#steps tr")
    assert await rows.count() == 2
    await rows.nth(0).locator(".s-en").fill("")
    await page.click("#save")
    await page.wait_for_selector("#status[data-state='error']")
    assert "steps.0.text.en" in (await page.text_content("#status") or "")  # the field named, nothing saved

    await rows.nth(0).locator(".s-en").fill("Look at the nearest cameras")
    await page.click("#add-step")
    new = rows.nth(2)
    await new.locator(".s-id").fill("barriers")
    await new.locator(".s-vi").fill("Đặt rào chắn")
    await new.locator(".s-en").fill("Place barriers")
    await new.locator(".s-when").select_option("critical")
    await new.locator("[data-move='-1']").click()  # before "call"
    await page.fill("[data-limit='resolve_min'][data-severity='critical']", "90")
    await page.click("#save")
    await page.wait_for_selector("#status[data-state='saved']")
    assert "phiên bản 2" in (await page.text_content("#status") or "")
    assert await page.get_attribute("body", "data-version") == "2"
    assert "Phiên bản 2" in (await page.text_content("#editions") or "")

    saved = await pool.fetchval("SELECT procedure FROM procedure_versions WHERE type = 't_page' AND version = 2")
    assert [s["id"] for s in saved["steps"]] == ["look", "barriers", "call"]
    assert saved["steps"][0]["text"]["en"] == "Look at the nearest cameras" and saved["steps"][1]["when"] == "critical"
    assert saved["limits"] == {"acknowledge_min": {"critical": 5.0}, "resolve_min": {"critical": 90.0}}
    assert saved["name"] == {"vi": "Thử trang", "en": "Page test"}


async def test_others_read_procedures_without_controls(opener: Any) -> None:
    page = await opener("/procedures?type=t_page&lang=en", "operator")
    assert await page.text_content("h1") == "Incident procedures"
    assert await page.is_visible("#readonly") and not await page.is_visible("#save")
    assert await page.locator("#steps .s-id").first.is_disabled()

"""The login and admin pages in a real Chromium: one-time password change, then the audit log as text."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import FastAPI
from playwright.async_api import Route, async_playwright

from dashboards import apidocs, pages, security
from dashboards.api import errors
from ioc import accounts, audit
from ioc.processes import free_port
from ioc.settings import Settings
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.uvicorn_app import serving_app

pytestmark = pytest.mark.browser


@pytest.fixture
async def site(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[str]:
    """The security router and the static files under a real uvicorn; yields the base URL."""
    app = FastAPI(docs_url=None, redoc_url=None)
    errors.install(app)
    app.state.pool = pool
    port = free_port()
    app.state.settings = settings.model_copy(update={"http_port": port})  # its pages' Origin is allowed
    app.include_router(security.router)
    app.include_router(pages.router)
    app.include_router(apidocs.router)
    async with serving_app(app, port) as base:
        yield base


async def test_first_login_then_admin_page_shows_audit_as_text(site: str, pool: asyncpg.Pool) -> None:
    name = f"boss-{uuid.uuid4().hex[:6]}"
    async with pool.acquire() as conn:
        one_time = await accounts.create_user(conn, name, "admin")
    marker = uuid.uuid4().hex[:8]
    await audit.record(
        pool,
        f"<img src=x onerror=alert('{marker}')>",
        "rule.change",
        f"<b>{marker}</b>\nforged",
        "success",
        "10.3.0.1",
    )
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
            errors_seen: list[str] = []
            page.on("pageerror", lambda e: errors_seen.append(str(e)))
            await page.goto(f"{site}/admin")
            assert page.url.endswith("/login?next=/admin")
            await page.get_by_text("Đăng nhập Trung tâm Điều hành").first.wait_for()
            await page.fill("#name", name)
            await page.fill("#password", one_time)
            await page.click("#login-form button")
            await page.fill("#new-password", "the new admin password")
            await page.click("#change-form button")
            await page.locator("#message", has_text="mật khẩu mới").wait_for()
            await page.fill("#password", "the new admin password")
            await page.click("#login-form button")
            await page.wait_for_url(f"{site}/admin")
            await page.wait_for_selector(f"#audit td:has-text('{marker}')")
            assert await page.locator("#audit img").count() == 0 and await page.locator("#audit b").count() == 0
            text = await page.locator("#audit").inner_text()
            assert f"<b>{marker}</b>\\u000aforged" in text
            assert name in await page.locator("#users").inner_text()
            assert not dialogs and not errors_seen, (dialogs, errors_seen)
        finally:
            await browser.close()


async def test_api_docs_render_with_no_request_elsewhere(site: str) -> None:
    """Issue 11: /docs loaded Swagger UI from a CDN. Now every request stays on this server, under the CSP."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            requested: list[str] = []

            async def note(route: Route) -> None:
                requested.append(route.request.url)
                await route.continue_()

            await context.route("**/*", note)
            tab = await context.new_page()
            problems: list[str] = []
            tab.on("pageerror", lambda e: problems.append(str(e)))
            tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            await tab.goto(f"{site}/docs")
            # The login operation from the OpenAPI document is drawn: the UI really ran.
            await tab.get_by_text("/api/v1/auth/login").first.wait_for(timeout=20_000)
            elsewhere = [u for u in requested if not u.startswith(site + "/")]
            assert not elsewhere, elsewhere
            assert f"{site}/openapi.json" in requested
            assert not problems, problems  # no CSP violation, no script error
        finally:
            await browser.close()

"""The admin page's open data API keys in a real Chromium, on the server's own database role: add a key (its secret
shown once), see the day's use, revoke it; both audited; Vietnamese and English."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import FastAPI
from playwright.async_api import async_playwright

from dashboards import pages, security
from dashboards.api import apikeys, errors
from ioc import accounts
from ioc.db import create_pool
from ioc.processes import free_port
from ioc.settings import Settings
from ioc.up import Stack
from opendata.keys import digest
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.uvicorn_app import serving_app

pytestmark = pytest.mark.browser
PASSWORD = "the keys admin's password"


@pytest.fixture
async def site(stack: Stack, settings: Settings) -> AsyncIterator[str]:
    """The admin page and its API under a real uvicorn, connected as ``ioc serve`` is (its role's grants)."""
    pool = await create_pool(stack.role_url("serve"), max_size=4)
    app = FastAPI(docs_url=None, redoc_url=None)
    errors.install(app)
    app.state.pool = pool
    port = free_port()
    app.state.settings = settings.model_copy(update={"http_port": port, "open_key_rows_per_day": 777_000})
    app.include_router(security.router)
    app.include_router(pages.router)
    app.include_router(apikeys.router, prefix="/api/v1")
    try:
        async with serving_app(app, port) as base:
            yield base
    finally:
        await pool.close()


async def test_admin_adds_sees_use_and_revokes_a_key(site: str, pool: asyncpg.Pool) -> None:
    admin = f"keys-{uuid.uuid4().hex[:6]}"
    business = f"Acme <b>{uuid.uuid4().hex[:4]}</b>"
    async with pool.acquire() as conn:
        await accounts.create_user(conn, admin, "admin", PASSWORD)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            errors_seen: list[str] = []
            page.on("pageerror", lambda e: errors_seen.append(str(e)))
            await page.goto(f"{site}/login?next=/admin")
            await page.fill("#name", admin)
            await page.fill("#password", PASSWORD)
            await page.click("#login-form button")
            await page.wait_for_url(f"{site}/admin")
            await page.locator("#keys-heading", has_text="Khóa API dữ liệu mở").wait_for()

            await page.fill("#key-name", business)
            await page.fill("#key-per-minute", "30")
            await page.click("#key-form button")
            once = page.locator("#key-once")
            await once.wait_for()
            key = re.search(r"ioc_([0-9a-f]{8})_\S+", await once.inner_text())
            assert key is not None, await once.inner_text()
            ident = key[1]
            row = await pool.fetchrow("SELECT * FROM open_api_keys WHERE id = $1", ident)
            assert row["key_sha256"] == digest(key[0]) and row["name"] == business  # stored hashed, named as typed
            assert (row["per_minute"], row["rows_per_day"]) == (30, 777_000)  # the default from the settings
            assert await page.locator("#keys b").count() == 0  # the name is text, not markup

            # The day's use (as the servers' meters write it), shown after a reload, without the secret.
            await pool.execute(
                "INSERT INTO open_api_usage (key_id, day, requests, rows) "
                "VALUES ($1, (now() AT TIME ZONE 'UTC')::date, 7, 1234567)",
                ident,
            )
            await page.reload()
            line = page.locator(f"#keys tr[data-key='{ident}']")
            await line.wait_for()
            text = await line.inner_text()
            assert business in text and "1.234.567" in text and "đang dùng" in text, text
            assert key[0] not in await page.content()

            await line.get_by_role("button", name="Thu hồi").click()
            await page.locator(f"#keys tr[data-key='{ident}']", has_text="đã thu hồi").wait_for()
            assert await pool.fetchval("SELECT revoked_at IS NOT NULL FROM open_api_keys WHERE id = $1", ident)
            actions = await pool.fetch(
                "SELECT action, outcome FROM audit_log WHERE actor = $1 AND target = $2 ORDER BY id", admin, ident
            )
            assert [(a["action"], a["outcome"]) for a in actions] == [
                ("apikey.add", "success"),
                ("apikey.revoke", "success"),
            ]

            await page.click("#lang-toggle")
            await page.locator("#keys-heading", has_text="Open data API keys").wait_for()
            english = await page.locator(f"#keys tr[data-key='{ident}']").inner_text()
            assert "1,234,567" in english and "revoked" in english
            assert not errors_seen, errors_seen
        finally:
            await browser.close()

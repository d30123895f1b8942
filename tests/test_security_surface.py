"""The live server's surface through a real ``ioc serve``: Schemathesis fuzzes the OpenAPI as each role (nothing
may answer 5xx), malformed static paths are refused, every response says nosniff, the API docs are local."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import hypothesis
import pytest
import requests
import schemathesis

from tests.support.auth import PASSWORD
from tests.support.live import login, raw_ws_handshake, session_headers
from tests.support.stack import serving

FUZZ_EXAMPLES = 40  # per operation and role
FUZZ_BUDGET_S = 150.0  # per role (46 operations): the operations not reached in time are reported, not silently passed
# Logging in, out or changing the password would end the fuzzer's own session or lock out its address.
NOT_FUZZED = {"/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/auth/password"}


@pytest.fixture(scope="module")
def server(run_ioc) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server of this module's own."""
    with serving(run_ioc, "serve-surface") as base:
        yield base


def _fuzz(base: str, token: str, deadline: float) -> tuple[Counter[str], list[str], list[str]]:
    """Schemathesis over every operation but NOT_FUZZED; returns (statuses, 5xx failures, operations not reached)."""
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()
    session.headers.update({**session_headers(token), "Origin": base})
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    skipped: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in NOT_FUZZED:
            continue
        if time.monotonic() > deadline:
            skipped.append(f"{operation.method.upper()} {operation.path}")
            continue

        @hypothesis.settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            if time.monotonic() > deadline:
                return
            response = case.call(base_url=base, session=session, timeout=10)
            statuses[f"{case.method} {case.operation.path} {response.status_code}"] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}")

        call()
    return statuses, failures, skipped


@pytest.mark.parametrize("role", ["viewer", "operator", "supervisor", "admin"])
async def test_fuzzing_the_api_as_each_role_finds_no_server_errors(
    server: str, people: dict[str, str], role: str
) -> None:
    token = await login(server, people[role], PASSWORD)
    statuses, failures, skipped = await asyncio.to_thread(_fuzz, server, token, time.monotonic() + FUZZ_BUDGET_S)
    assert not failures, failures[:20]
    assert sum(statuses.values()) >= FUZZ_EXAMPLES * 10, statuses  # the fuzzer really called the server
    assert not skipped, f"out of time before {skipped}"
    async with httpx.AsyncClient(base_url=server, headers=session_headers(token)) as http:
        assert (await http.get("/api/v1/me")).status_code == 200  # the session survived the fuzzing


MALFORMED_STATIC = [
    "/static/js/%00.js",
    "/static/%00",
    "/static/js/" + "a" * 5000 + ".js",
    "/static/js/%ff%fe.js",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fpyproject.toml",
    "/static/js/%c0%ae%c0%ae/x.js",
    "/static/.hidden",
    "/static/js/",
    "/static/js//wall.js",
    "/static/js/wall.js%00.png",
    "/static/" + "/".join(["d"] * 300),
]


async def test_malformed_static_paths_are_refused_never_a_server_error(server: str) -> None:
    """Issue 11: /static/js/%00.js answered 500 with a traceback."""
    async with httpx.AsyncClient(base_url=server, timeout=10) as http:
        for path in MALFORMED_STATIC:
            r = await http.get(httpx.URL(server + path))
            assert r.status_code in {400, 404}, (path[:60], r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/json"), path[:60]
            assert "error" in r.json() and "Traceback" not in r.text
        assert (await http.get("/static/js/wall.js")).status_code == 200  # a real one still works


async def test_every_response_says_nosniff(server: str, people: dict[str, str]) -> None:
    """Issue 11: X-Content-Type-Options was on our pages only, not on errors, files or the API."""
    token = await login(server, people["viewer"], PASSWORD)
    async with httpx.AsyncClient(base_url=server, timeout=10) as http:
        answers = [
            await http.get("/api/v1/health"),
            await http.get("/api/v1/zones"),  # 401
            await http.get("/api/v1/zones", headers=session_headers(token)),  # 200 JSON
            await http.get("/api/v1/alerts", params={"limit": "many"}, headers=session_headers(token)),  # 422
            await http.get("/api/v1/no-such-thing"),  # 404
            await http.delete("/api/v1/health"),  # 405
            await http.get("/static/js/wall.js"),
            await http.get("/static/js/%00.js"),
            await http.get("/static/vendor/plotly.min.js"),
            await http.get("/login"),
            await http.get("/wall", follow_redirects=False),  # 303
            await http.get("/docs"),
            await http.get("/docs/assets/swagger-ui.css"),
            await http.get("/openapi.json"),
            await http.get("/metrics"),
        ]
    for r in answers:
        assert r.headers.get("x-content-type-options") == "nosniff", (r.request.url.path, r.status_code)
    assert {r.status_code for r in answers} >= {200, 303, 401, 404, 405, 422}
    status, headers, body = await raw_ws_handshake(server, "/ws/v1/no-such-socket")
    assert " 403 " in status and headers.get("x-content-type-options") == "nosniff", (status, headers)
    assert headers["content-type"] == "application/json" and b'"forbidden"' in body


async def test_api_docs_load_nothing_from_elsewhere(server: str) -> None:
    """Issue 11: /docs loaded Swagger UI from a CDN (offline control rooms, and no integrity check)."""
    async with httpx.AsyncClient(base_url=server, timeout=10) as http:
        r = await http.get("/docs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        urls = re.findall(r"""(?:src|href|data-openapi-url)=["']([^"']+)""", r.text)
        assert len(urls) == 5 and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src" not in csp and "http" not in csp, csp
        for url in urls:
            assert (await http.get(url)).status_code == 200, url
        assert (await http.get("/redoc")).status_code == 404  # off: it always fetches its logo from its vendor

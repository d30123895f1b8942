"""Session fixtures: the real embedded stack (PostgreSQL+TimescaleDB, Mosquitto) on free ports.

The same code as ``ioc up`` (ioc.up.Stack) starts it, so the suite tests what users run. Helpers that
tests import live in tests/support/ (never import this module); the users and browser fixtures
are plugins, loaded for every test module below.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import asyncpg
import pytest

from ioc.cluster import prune_clusters
from ioc.db import create_pool
from ioc.processes import Child, free_port, spawn
from ioc.settings import Settings
from ioc.up import Stack
from tests.support.stack import Broker, log_tail, remove_scratch, wait_for

pytest_plugins = ["tests.support.auth", "tests.support.browser", "tests.support.incidents", "tests.support.tls"]


def _scratch(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Path]]:
    """Make throwaway folders readable by the postgres user; at teardown they are removed if no test
    failed meanwhile, else kept (with the services' logs) and their paths printed."""
    made: list[Path] = []
    failed_before = request.session.testsfailed

    def make(prefix: str) -> Path:
        root = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(root, 0o755)
        made.append(root)
        return root

    yield make
    for root in made:
        if request.session.testsfailed > failed_before:
            print(f"\nkept for inspection (a test failed): {root}; once deleted, `ioc prune` removes its cluster")
        else:
            remove_scratch(root)


scratch_dir = pytest.fixture(_scratch, name="scratch_dir")
module_scratch_dir = pytest.fixture(_scratch, scope="module", name="module_scratch_dir")
session_scratch_dir = pytest.fixture(_scratch, scope="session", name="session_scratch_dir")


@pytest.fixture(scope="session")
def state_dir(session_scratch_dir: Callable[[str], Path]) -> Path:
    """The test stack's state folder (a database and a broker, a few hundred MB)."""
    return session_scratch_dir("ioc-test-")


@pytest.fixture(scope="session")
def stack(state_dir: Path) -> Iterator[Stack]:
    """The embedded database and broker, migrated, with the demo fleet imported."""
    settings = Settings(
        state_dir=state_dir, db_port=free_port(), mqtt_port=free_port(), http_port=free_port(), environment="test"
    )
    stack = Stack(settings, fast_db=True)
    prune_clusters()  # those of earlier runs that were killed, or kept after a failure and deleted since
    stack.prepare_state(reset=False)
    stack.start_services()
    try:
        fleet = settings.fleet_file if settings.fleet_file.exists() else None
        stack.load_data(fleet)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def broker(stack: Stack) -> Broker:
    """The test Mosquitto."""
    assert stack.mosquitto is not None and stack.broker_files is not None
    creds = stack.broker_files.credentials
    user, password = (unquote(p) for p in creds["simulate"].split(":", 1))
    reader, reader_password = (unquote(p) for p in creds["ingest"].split(":", 1))
    return Broker("127.0.0.1", stack.mosquitto.port, user, password, reader, reader_password)


@pytest.fixture(scope="session")
def database_url(stack: Stack) -> str:
    """libpq URL of the test database as its owner (set-up and checks; processes use their own roles)."""
    return stack.database_url


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    """Settings as an application process of the test stack sees them."""
    return Settings(
        database_url=stack.database_url,
        mqtt_url=stack.mqtt_url,
        state_dir=stack.state_dir,
        http_port=stack.settings.http_port,
        environment="test",
    )


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on the test database."""
    p = await create_pool(database_url, max_size=5)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def app_env(stack: Stack) -> dict[str, str]:
    """Environment for ``ioc`` subprocesses pointed at the test stack."""
    env = stack.child_env()
    env["IOC_ENVIRONMENT"] = "test"
    # The open data bulk files' job would write 30 days of files beside every test (tests/test_opendata_bulk.py
    # turns it on for its own server).
    env["IOC_OPEN_BULK_JOB"] = "false"
    return env


@pytest.fixture(scope="session")
def run_ioc(stack: Stack, app_env: dict[str, str]) -> Iterator[object]:
    """Start ``ioc <args>`` processes as the supervisor would (each service with its own database role and
    broker account); all are stopped at the end of the session."""
    started: list[Child] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        log = stack.state_dir / "logs" / f"{name}-{len(started)}.log"
        service = args[0] if args else ""
        service_env = {
            **app_env,
            "IOC_DATABASE_URL": stack.role_url(service),
            "IOC_MQTT_URL": stack.service_mqtt_url(service) if service else stack.mqtt_url,
        }
        child = spawn(name, [sys.executable, "-m", "ioc.cli", *args], log, env={**service_env, **(env or {})})
        started.append(child)
        return child

    yield start
    for child in reversed(started):
        child.stop()


@pytest.fixture(scope="session")
def ingest(run_ioc, pool: asyncpg.Pool, stack: Stack) -> Child:  # type: ignore[no-untyped-def]
    """One `ioc ingest` worker for the session, ready when its heartbeat row appears."""
    child: Child = run_ioc("ingest", "ingest", "--client-id", "ingest-session", "--metrics-port", "0")
    dsn = stack.database_url

    def heartbeat() -> bool:
        async def check() -> bool:
            conn = await asyncpg.connect(dsn)
            try:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM ingest_workers WHERE worker_id = 'ingest-session' "
                        "AND heartbeat_at > now() - interval '30 seconds'"
                    )
                )
            finally:
                await conn.close()

        assert child.proc.poll() is None, log_tail(child)
        return asyncio.run(check())

    wait_for(heartbeat, 30, 0.2, "the ingest worker's first heartbeat")
    return child

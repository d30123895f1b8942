"""``ioc up``: bring the whole operations centre up under one supervisor, and down again on Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TypeVar

import asyncpg

from ioc.accounts import ensure_demo_users
from ioc.broker import EmbeddedMosquitto
from ioc.cluster import EmbeddedPostgres, prune_clusters
from ioc.db import create_pool, describe, migrate
from ioc.errors import StackError
from ioc.processes import Child, free_port, port_free, require_port, spawn
from ioc.provisioning import BrokerFiles, prepare_broker, with_credentials
from ioc.settings import Settings
from ioc.supervisor import STATUS_FILE, Supervisor
from ioc.tls import TlsListener

logger = logging.getLogger(__name__)

T = TypeVar("T")
STATE_MARKER = ".ioc-state"
# The database role each application process connects as (ioc/grants.py); the rest use none.
SERVICE_ROLES = {"ingest": "ingest", "serve": "serve", "open": "serve"}
# `ioc open`'s HTTP port and the public MQTT broker's, unless configured (taken: a free port instead).
OPEN_HTTP_PORT, OPEN_MQTT_PORT = 8001, 1884


@dataclass
class Stack:
    """The embedded services and the application processes of one ``ioc up``."""

    settings: Settings
    fast_db: bool = False
    postgres: EmbeddedPostgres | None = None
    mosquitto: EmbeddedMosquitto | None = None
    children: dict[str, Child] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)
    supervisor: Supervisor | None = None
    broker_files: BrokerFiles | None = None
    public_mosquitto: EmbeddedMosquitto | None = None  # the open data's public broker (opendata/mqtt.py)
    open_mqtt_url: str = ""  # its publisher account's URL, for `ioc open`
    open_port: int = 0
    demo_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """Absolute state folder."""
        return self.settings.state_dir.resolve()

    @property
    def database_url(self) -> str:
        """The database in use (embedded or external), as its owner: migrations and set-up."""
        return self.postgres.url if self.postgres else self.settings.resolved_database_url()

    def database_password_hint(self) -> str:
        """Where the banner's database password is (never the password itself)."""
        if self.postgres is None:
            return "  (password as in IOC_DATABASE_URL)"
        return f"  (password in {self.postgres.passwords_dir / 'owner'})"

    def role_url(self, service: str) -> str:
        """The database URL ``service``'s process uses: its own runtime role on the embedded cluster."""
        role = SERVICE_ROLES.get(service)
        if self.postgres and role:
            return self.postgres.url_for(role)
        return self.database_url

    @property
    def mqtt_url(self) -> str:
        """The broker in use (embedded or external)."""
        return self.mosquitto.url if self.mosquitto else self.settings.resolved_mqtt_url()

    def prepare_state(self, reset: bool) -> None:
        """Create (or with ``reset`` empty) the state folder, private to this user: it holds passwords."""
        root = self.state_dir
        if reset and root.exists():
            if not (root / STATE_MARKER).exists():
                raise StackError(f"refusing to --reset {root}: it is not an ioc state folder (no {STATE_MARKER})")
            EmbeddedPostgres(root / "postgres", 0).remove()  # it may live outside (EmbeddedPostgres._place)
            shutil.rmtree(root)
        (root / "logs").mkdir(mode=0o700, parents=True, exist_ok=True)
        (root / STATE_MARKER).touch()
        for path in (root, root / "logs"):
            path.chmod(0o700)
        for log in (root / "logs").glob("*.log"):
            log.chmod(0o600)

    def start_services(self) -> None:
        """Start PostgreSQL and Mosquitto unless external URLs are configured."""
        s = self.settings
        logs = self.state_dir / "logs"
        # Pre-flight: every binary and port is checked before anything starts.
        if not s.mqtt_url:
            EmbeddedMosquitto(self.state_dir / "mosquitto", s.mqtt_port, binary=s.mosquitto_bin).find_binary()
            require_port(s.mqtt_port, "MQTT", "--mqtt-port")
        if not s.database_url:
            self.postgres = EmbeddedPostgres(
                self.state_dir / "postgres", s.db_port, fast=self.fast_db, bindir_override=s.pg_bindir
            )
            require_port(s.db_port, "PostgreSQL", "--db-port")
            if self.postgres.initdb():
                logger.info("created a new PostgreSQL cluster in %s", self.postgres.root)
            self.postgres.start(logs / "postgres.log")
        # The broker's accounts and ACL live in the database, so it is migrated before the broker starts.
        migrate(self.database_url)
        if not s.mqtt_url:
            broker_dir = self.state_dir / "mosquitto"
            self.broker_files = asyncio.run(
                self._with_conn(lambda conn: prepare_broker(conn, broker_dir, s.topic_prefix))
            )
            extra = self.broker_files.config_lines()
            if s.mqtt_tls_cert and s.mqtt_tls_key:
                require_port(s.mqtt_tls_port, "MQTT over TLS", "IOC_MQTT_TLS_PORT=")
                extra += TlsListener(s.mqtt_tls_port, s.mqtt_tls_cert, s.mqtt_tls_key).config_lines()
            self.mosquitto = EmbeddedMosquitto(broker_dir, s.mqtt_port, binary=s.mosquitto_bin, extra=extra)
            self.mosquitto.start(logs / "mosquitto.log")

    async def _with_conn(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = await create_pool(self.database_url, max_size=1)
        try:
            async with pool.acquire() as conn:
                return await work(conn)
        finally:
            await pool.close()

    def load_data(self, fleet_file: Path | None) -> None:
        """Import the fleet (if any) and create the demo users (their new one-time passwords are kept)."""
        from ioc.fleet import load_fleet
        from ioc.kinds import load_kinds
        from ioc.registry import import_fleet

        fleet = load_fleet(fleet_file, load_kinds(self.settings.kinds_file)) if fleet_file else None

        async def go(conn: asyncpg.Connection) -> dict[str, str]:
            if fleet is not None:
                await import_fleet(conn, fleet)
            return await ensure_demo_users(conn)

        self.demo_passwords = asyncio.run(self._with_conn(go))

    def service_mqtt_url(self, service: str) -> str:
        """The broker URL with ``service``'s own account (embedded broker), else the configured URL."""
        if self.broker_files is not None and service in self.broker_files.credentials:
            return with_credentials(self.mqtt_url, self.broker_files.credentials[service])
        return self.mqtt_url

    def child_env(self, service: str = "") -> dict[str, str]:
        """Environment for application processes: the same settings, explicit URLs, the service's account."""
        env = dict(os.environ)
        env.update(
            {
                "IOC_DATABASE_URL": self.role_url(service),
                "IOC_MQTT_URL": self.service_mqtt_url(service),
                "IOC_STATE_DIR": str(self.state_dir),
                "IOC_HTTP_PORT": str(self.settings.http_port),
                "IOC_ENVIRONMENT": self.settings.environment,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if service == "open" and self.open_mqtt_url:
            env["IOC_OPEN_MQTT_URL"] = self.open_mqtt_url
        return env

    def start_open_data(self) -> Child:
        """``ioc open`` (the public API at a lower priority, pushing to MQTT) and, beside the embedded broker, the
        public broker it pushes to; an external broker's deployment names its own (IOC_OPEN_MQTT_URL)."""
        from opendata.mqtt import PUBLIC_TEMPLATE, write_broker_files

        s = self.settings
        if not s.mqtt_url:
            folder = self.state_dir / "mosquitto-public"
            lines, publisher = write_broker_files(folder / "auth")
            port = s.open_mqtt_port or _port_or_free(OPEN_MQTT_PORT)
            self.public_mosquitto = EmbeddedMosquitto(
                folder, port, template=PUBLIC_TEMPLATE, binary=s.mosquitto_bin, extra=lines
            )
            self.public_mosquitto.start(self.state_dir / "logs" / "mosquitto-public.log")
            self.open_mqtt_url = with_credentials(self.public_mosquitto.url, publisher)
        self.open_port = s.open_http_port or _port_or_free(OPEN_HTTP_PORT)
        return self.start_app("open", ["open", "--port", str(self.open_port)])

    def _spawn(self, name: str) -> Child:
        """Start (or start again) the application process ``name``; ``children`` holds its newest."""
        argv = self.argv[name]
        child = spawn(name, argv, self.state_dir / "logs" / f"{name}.log", env=self.child_env(argv[3]))
        self.children[name] = child
        return child

    def start_app(self, name: str, args: list[str]) -> Child:
        """Start ``ioc <args>`` as a supervised child logging to the state folder."""
        self.argv[name] = [sys.executable, "-m", "ioc.cli", *args]
        child = self._spawn(name)
        if self.supervisor is None:
            self.supervisor = Supervisor(self._spawn, self.state_dir / STATUS_FILE)
        self.supervisor.add(name, child)
        return child

    def supervise_once(self) -> None:
        """Restart the application processes that exited when their backoff is over (never waits)."""
        if self.supervisor is not None:
            self.supervisor.poll()

    def stop(self) -> None:
        """Stop everything: producers first, the database last."""
        if self.supervisor is not None:
            self.supervisor.remove()
        for name in ("simulate", "ingest", "open", "serve"):
            child = self.children.pop(name, None)
            if child:
                child.stop()
        for name, child in list(self.children.items()):
            child.stop()
            self.children.pop(name)
        for broker in (self.public_mosquitto, self.mosquitto):
            if broker:
                broker.stop()
        if self.postgres:
            self.postgres.stop()


def _port_or_free(port: int) -> int:
    """``port``, or a free one when something already listens there (another ``ioc up``, say)."""
    return port if port_free(port) else free_port()


def wait_http(url: str, timeout: float, child: Child) -> None:
    """Wait until ``url`` answers 200, failing early if the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise StackError(f"the API server exited during start-up; see {child.log.name if child.log else 'its log'}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own localhost URL
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise StackError(f"the API server did not answer {url} within {timeout:.0f} s")


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _banner(stack: Stack, base: str, took_s: float, simulated: str) -> str:
    """What ``ioc up`` prints once everything is running: where each part is."""
    return (
        f"\nioc is up in {took_s:.1f} s\n"
        f"  Operators' wall   {base}/wall\n"
        f"  Leaders' summary  {base}/summary\n"
        f"  Incident console  {base}/console\n"
        f"  API (OpenAPI)     {base}/docs\n"
        f"  Health            {base}/api/v1/health\n"
        f"  MQTT broker       {stack.mqtt_url}\n"
        f"  Open data API     http://localhost:{stack.open_port}/sta/v1.1  (public; health /open/health)\n"
        + (
            f"  Open data MQTT    {stack.public_mosquitto.url}  (anonymous, read-only: v1.1/#)\n"
            if stack.public_mosquitto
            else ""
        )
        + f"  Database          {describe(stack.database_url)}{stack.database_password_hint()}\n"
        f"  State and logs    {stack.state_dir}  (logs/*.log)\n"
        f"  Simulators        {simulated}"
        + "".join(
            f"\n  Demo user {name:9s} password {pw}  (one-time: change it at first login)"
            for name, pw in stack.demo_passwords.items()
        )
        + "\nPress Ctrl-C to stop."
    )


def run_up(
    settings: Settings, *, reset: bool, simulators: bool, speed: float, seed: int | None, scenario: str | None
) -> int:
    """Start the stack, print where everything is, and supervise it until Ctrl-C or SIGTERM."""
    os.umask(0o077)  # every file ioc up and its children create is private to this user
    stack = Stack(settings)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    started = time.monotonic()
    history = None
    try:
        require_port(settings.http_port, "the dashboard/API", "--http-port")
        prune_clusters()  # the clusters of removed clones and deleted test folders (root only: see ioc.cluster)
        stack.prepare_state(reset)
        stack.start_services()
        # The demo fleet comes with the simulated city only: a real deployment starts with an empty registry.
        stack.load_data(settings.fleet_file if simulators else None)
        if simulators:
            from simulators.backfill import backfill_if_empty

            history = backfill_if_empty(settings, stack.database_url, seed)
        stack.start_app("ingest", ["ingest"])
        serve = stack.start_app("serve", ["serve"])
        base = f"http://localhost:{settings.http_port}"
        wait_http(f"{base}/api/v1/health", 60, serve)
        opened = stack.start_open_data()
        wait_http(f"http://localhost:{stack.open_port}/open/health", 60, opened)
        if simulators:
            sim = ["simulate", "--speed", str(speed)]
            if seed is not None:
                sim += ["--seed", str(seed)]
            if scenario:
                sim += ["--scenario", scenario]
            stack.start_app("simulate", sim)
        simulated = f"running at x{speed:g} speed" if simulators else "off (--no-simulators)"
        print(_banner(stack, base, time.monotonic() - started, simulated), flush=True)
        while True:
            time.sleep(0.5)  # the tick of the loop; restarts are scheduled, never waited for here
            stack.supervise_once()
    except _Stop:
        print("\nstopping ...", flush=True)
        return 0
    except StackError as exc:
        print(f"ioc up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if history is not None:
            history.stop()  # before the database: its workers end and their open spans roll back
        stack.stop()
        logger.info("all processes stopped")

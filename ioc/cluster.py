"""The embedded database: a private PostgreSQL+TimescaleDB cluster under the state folder.

`ioc up` and the test fixtures both use it, so the tests exercise what users run.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ioc.errors import StackError
from ioc.grants import ROLES
from ioc.processes import SETUP_HINT, Child, find_installed, require_port, spawn, wait_port
from ioc.settings import REPO_ROOT

logger = logging.getLogger(__name__)

PG_MAJOR = 15
PG_BINDIR_CANDIDATES = (Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin"), Path("/usr/local/pgsql/bin"))
# Where root's embedded clusters live when the state folder is private (the postgres user cannot enter it).
CLUSTERS_DIR = Path("/var/lib/ioc")
OWNER_FILE = "STATE_FOLDER"  # in each cluster folder there: the absolute path of the state folder it belongs to
ROLES_SQL = REPO_ROOT / "migrations" / "roles.sql"


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL cluster (TimescaleDB preloaded when installed) in ``root``.

    Every connection, over TCP or the Unix socket, needs a password (SCRAM); the socket's folder is private
    to the cluster's OS user. The superuser only creates the roles (migrations/roles.sql); the application
    connects as ``ioc_owner`` (migrations, administration) or its runtime roles (ioc/grants.py), whose
    passwords are the files in ``root/passwords``.
    """

    root: Path
    port: int
    fast: bool = False  # tests: fsync off (data safety does not matter for throwaway clusters)
    bindir_override: Path | None = None
    timescaledb: bool = True  # False: a plain PostgreSQL (the degraded mode migrations must support)
    child: Child | None = field(default=None, init=False)

    @property
    def bindir(self) -> Path:
        """PostgreSQL's server binaries."""
        candidates = (self.bindir_override,) if self.bindir_override else PG_BINDIR_CANDIDATES
        found = find_installed(candidates, f"PostgreSQL {PG_MAJOR} server")
        if not (found / "postgres").exists():
            raise StackError(f"PostgreSQL {PG_MAJOR} server not found in {found}: {SETUP_HINT}")
        return found

    @property
    def home(self) -> Path:
        """The cluster's real folder: ``root``, or where ``root`` links to when its parents are private."""
        return self.root.resolve()

    @property
    def data_dir(self) -> Path:
        """PGDATA."""
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the Unix socket lives (kept short: socket paths are limited to 107 bytes)."""
        return self.home / "run"

    @property
    def passwords_dir(self) -> Path:
        """One file per role (``postgres``, ``owner``, ``ingest``, ``serve``, ``read``), private to this user."""
        return self.root / "passwords"

    @property
    def user(self) -> str | None:
        """The OS user that runs postgres: ``postgres`` when we are root (postgres refuses root)."""
        return "postgres" if os.geteuid() == 0 else None

    def password(self, purpose: str = "owner") -> str:
        """The password of the role for ``purpose`` (a key of ioc.grants.ROLES, or ``postgres``)."""
        try:
            return (self.passwords_dir / purpose).read_text().strip()
        except FileNotFoundError as exc:
            raise StackError(f"no database password for {purpose!r} in {self.passwords_dir}") from exc

    def url_for(self, purpose: str = "owner") -> str:
        """libpq URL of the ``ioc`` database as the role for ``purpose``."""
        return f"postgresql://{ROLES[purpose]}:{self.password(purpose)}@127.0.0.1:{self.port}/ioc"

    @property
    def url(self) -> str:
        """libpq URL of the ``ioc`` database as its owner."""
        return self.url_for("owner")

    def timescaledb_available(self) -> bool:
        """True when the timescaledb library is installed for this server."""
        pg_config = self.bindir / "pg_config"
        libdir = subprocess.run(
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return bool(libdir) and Path(libdir, "timescaledb.so").exists()

    def _chown(self, path: Path) -> None:
        if self.user:
            shutil.chown(path, self.user, self.user)

    def _reachable(self, folder: Path) -> bool:
        """True when the cluster's OS user can traverse every folder down to ``folder``."""
        if not self.user:
            return True
        probe = subprocess.run(["runuser", "-u", self.user, "--", "test", "-x", str(folder)], check=False)
        return probe.returncode == 0

    def _place(self) -> None:
        """Create the cluster's folder where its OS user reaches it: ``root`` itself when its parents let
        that user in, else a folder under CLUSTERS_DIR that ``root`` links to (root's 0700 home, a private
        state folder), so no parent's permissions ever need changing."""
        if self.root.is_symlink() and not self.root.exists():
            self.root.unlink()  # its cluster was removed
        if not self.root.exists():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            if self._reachable(self.root.parent):
                self.root.mkdir(mode=0o700)
            else:
                CLUSTERS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
                CLUSTERS_DIR.chmod(0o755)  # the postgres user passes through to its own folder only
                home = Path(tempfile.mkdtemp(prefix="postgres-", dir=CLUSTERS_DIR))
                (home / OWNER_FILE).write_text(f"{self.root.parent.absolute()}\n")
                self.root.symlink_to(home, target_is_directory=True)
                logger.info("the postgres user cannot reach %s: the cluster lives in %s", self.root.parent, home)
        self.home.chmod(0o700)
        self._chown(self.home)
        if not self._reachable(self.home):
            raise StackError(f"the '{self.user}' user cannot reach {self.home}: remove it and start again")

    def remove(self) -> None:
        """Delete the cluster's files (it must be stopped), wherever they live."""
        if self.root.is_symlink():
            target = self.home
            if target.parent == CLUSTERS_DIR:
                shutil.rmtree(target, ignore_errors=True)
            self.root.unlink()
        elif self.root.exists():
            shutil.rmtree(self.root)

    def initdb(self) -> bool:
        """Create the cluster, its roles and the ``ioc`` database if missing; True when it was created."""
        if (self.data_dir / "PG_VERSION").exists():
            if not (self.passwords_dir / "owner").exists():
                raise StackError(
                    f"the database in {self.root} was made by an older ioc that let every local user in: "
                    "start from an empty one with 'ioc up --reset' (or move the folder away)"
                )
            return False
        self._place()
        self.passwords_dir.mkdir(mode=0o700, exist_ok=True)
        for purpose in ("postgres", *ROLES):
            secret = self.passwords_dir / purpose
            secret.write_text(secrets.token_urlsafe(24) + "\n")
            secret.chmod(0o600)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.socket_dir)
        superpw = self.home / ".superpw"  # initdb reads the superuser's password from a file it can open
        superpw.write_text(self.password("postgres") + "\n")
        superpw.chmod(0o600)
        self._chown(superpw)
        try:
            result = subprocess.run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    # Text compared as bytes: the same order as C.UTF-8's (code points) without the locale's
                    # per-comparison cost, which the (device_id, metric, part, time) keys pay on every insert.
                    "--lc-collate=C",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={superpw}",
                ],
                capture_output=True,
                text=True,
                user=self.user,
                check=False,
            )
        finally:
            superpw.unlink()
        if result.returncode != 0:
            raise StackError(
                f"initdb failed: {result.stderr.strip().splitlines()[-1] if result.stderr else result.returncode}"
            )
        with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(self._config())
        self.start()
        return True

    def _config(self) -> str:
        lines = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_permissions = 0700",
            "password_encryption = 'scram-sha-256'",
            "max_connections = 300",
            "shared_buffers = '512MB'",
            "work_mem = '16MB'",
            "maintenance_work_mem = '128MB'",
            "wal_buffers = '16MB'",
            "max_wal_size = '2GB'",
            "checkpoint_timeout = '10min'",
            "log_min_messages = warning",
            "log_line_prefix = '%m [%p] %u@%d '",
            "timezone = 'UTC'",
        ]
        if self.timescaledb and self.timescaledb_available():
            lines += ["shared_preload_libraries = 'timescaledb'", "timescaledb.telemetry_level = off"]
        elif self.timescaledb:
            logger.warning("TimescaleDB is not installed for PostgreSQL %s: running without it", PG_MAJOR)
        if self.fast:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        return "\n# written by ioc.cluster\n" + "\n".join(lines) + "\n"

    def start(self, log_path: Path | None = None, timeout: float = 30.0) -> None:
        """Start the server, wait until it accepts connections, and make sure the roles exist."""
        if self.child and self.child.proc.poll() is None:
            return
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            self._clear_stale_pid(pid_file)
        require_port(self.port, "PostgreSQL", "--db-port")
        log_path = log_path or self.home / "postgres.log"
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
        self.child = spawn(
            "postgres",
            [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.socket_dir)],
            log_path,
            user=self.user,
            stop_signal=signal.SIGINT,
        )
        wait_port(self.port, timeout, self.child.proc, f"PostgreSQL (log: {log_path})")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port)], check=False
            )
            if ready.returncode == 0:
                self.ensure_roles()
                return
            time.sleep(0.1)
        raise StackError(f"PostgreSQL did not become ready within {timeout:.0f} s (log: {log_path})")

    def ensure_roles(self) -> None:
        """Create (or set the passwords of) the ``ioc`` database and its roles: migrations/roles.sql."""
        passwords = {f"IOC_DB_{purpose.upper()}_PASSWORD": self.password(purpose) for purpose in ROLES}
        self.psql(ROLES_SQL.read_text(), "postgres", env=passwords)

    def _clear_stale_pid(self, pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            pid_file.unlink(missing_ok=True)  # left by a crash: postgres would refuse to start
            return
        except PermissionError:
            pass
        raise StackError(f"another PostgreSQL (pid {pid}) is running on {self.data_dir}: stop the other 'ioc up' first")

    def psql(self, sql: str, database: str = "ioc", env: dict[str, str] | None = None) -> str:
        """Run SQL (a psql script, from stdin) as the superuser over the Unix socket; return its output."""
        result = subprocess.run(
            [
                str(self.bindir / "psql") if (self.bindir / "psql").exists() else "psql",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atq",
                "-f",
                "-",
            ],
            input=sql,
            capture_output=True,
            text=True,
            user=self.user,
            env={"PATH": os.environ.get("PATH", ""), **(env or {}), "PGPASSWORD": self.password("postgres")},
            cwd="/",
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def stop(self) -> None:
        """Fast shutdown."""
        if self.child:
            self.child.stop(timeout=30)
            self.child = None


def running_port(root: Path) -> int | None:
    """The port of the cluster running in ``root`` (from its postmaster.pid), None when it is not running."""
    try:
        lines = (root / "data" / "postmaster.pid").read_text().splitlines()
        return int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def embedded_database_url(state_dir: Path, purpose: str, port: int) -> str | None:
    """The URL of the cluster ``ioc up`` keeps in ``state_dir``, as the role for ``purpose`` and on the port
    it runs on, or None when that state folder has no cluster (or its passwords are not this user's)."""
    pg = EmbeddedPostgres(state_dir.resolve() / "postgres", port)
    try:
        pg.password(purpose)
    except (StackError, PermissionError):
        return None
    pg.port = running_port(pg.home) or port
    return pg.url_for(purpose)


def remove_linked_clusters(folder: Path) -> None:
    """Delete the clusters under CLUSTERS_DIR that ``folder`` (or a folder inside it) links to."""
    for parent, dirs, _ in os.walk(folder):
        for name in dirs:
            path = Path(parent, name)
            if path.is_symlink() and path.resolve().parent == CLUSTERS_DIR:
                shutil.rmtree(path.resolve(), ignore_errors=True)


@dataclass(frozen=True)
class Orphan:
    """A cluster folder under CLUSTERS_DIR whose state folder is gone."""

    path: Path
    owner: Path  # the state folder it belonged to
    size_bytes: int


def _running(pid_file: Path) -> bool:
    """True when the postmaster named in ``pid_file`` is alive (a pid reused by another program is not)."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: keep it


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.lstat().st_size
        except OSError:
            continue
    return total


def orphaned_clusters(clusters_dir: Path = CLUSTERS_DIR) -> list[Orphan]:
    """The clusters under ``clusters_dir`` that may be deleted: their recorded state folder no longer exists and
    their postgres is not running. A folder without an owner record (being created, or not ours) is kept."""
    found = []
    for home in sorted(clusters_dir.glob("postgres-*")) if clusters_dir.is_dir() else []:
        try:
            owner = Path((home / OWNER_FILE).read_text().strip())
        except OSError:
            continue
        if home.is_symlink() or not owner.is_absolute() or owner.exists():
            continue
        if _running(home / "data" / "postmaster.pid"):
            continue
        found.append(Orphan(home, owner, _size(home)))
    return found


def prune_clusters(clusters_dir: Path = CLUSTERS_DIR) -> list[Orphan]:
    """Delete the orphaned clusters under ``clusters_dir`` (of removed clones, deleted test folders); returns them."""
    removed = orphaned_clusters(clusters_dir)
    for orphan in removed:
        shutil.rmtree(orphan.path, ignore_errors=True)
        logger.info("removed the database cluster %s: its state folder %s is gone", orphan.path, orphan.owner)
    return removed

"""`ioc up` as a user runs it: the whole stack, a clean stop on Ctrl-C, data kept, clear one-line errors,
private files, commands beside it that find its database, and a crash loop that stops nothing else."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from ioc.cluster import CLUSTERS_DIR
from ioc.processes import free_port, port_free
from ioc.settings import REPO_ROOT
from tests.support.stack import wait_for


def ioc_up(state: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], dict[str, int]]:
    ports = {"http": free_port(), "mqtt": free_port(), "db": free_port(), "open": free_port(), "open_mqtt": free_port()}
    cmd = [
        sys.executable,
        "-m",
        "ioc.cli",
        "up",
        "--state-dir",
        str(state),
        "--http-port",
        str(ports["http"]),
        "--mqtt-port",
        str(ports["mqtt"]),
        "--db-port",
        str(ports["db"]),
        *args,
    ]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    # ioc open's and the public broker's ports: free ones, so tests never race for the defaults (8001, 1884).
    clean_env |= {"IOC_OPEN_HTTP_PORT": str(ports["open"]), "IOC_OPEN_MQTT_PORT": str(ports["open_mqtt"])}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**clean_env, **(env or {})}
    )
    return proc, ports


def wait_up(proc: subprocess.Popen[str], timeout: float = 90) -> list[str]:
    """Read stdout until the 'is up' banner is complete."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"ioc up exited ({proc.wait()}): {proc.stderr.read() if proc.stderr else ''}")
        lines.append(line.rstrip())
        if line.startswith("Press Ctrl-C"):
            return lines
    pytest.fail("ioc up did not finish starting")


def health(port: int) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as resp:
        return json.loads(resp.read())


def psql(state: Path, port: int, sql: str, purpose: str = "owner") -> str:
    """Run ``sql`` as the database's owner (or another role), with the password kept in the state folder."""
    password = (state / "postgres" / "passwords" / purpose).read_text().strip()
    user = "postgres" if purpose == "postgres" else f"ioc_{purpose}"
    return subprocess.run(
        ["psql", f"postgresql://{user}:{password}@127.0.0.1:{port}/ioc", "-Atqc", sql],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def ioc_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run an ``ioc`` command as a person would beside ``ioc up``: no IOC_DATABASE_URL, nothing but the state folder."""
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    argv = [sys.executable, "-m", "ioc.cli", *args]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env={**clean_env, **(env or {})})
    assert result.returncode == 0, f"ioc {' '.join(args)}: {result.stderr}"
    return result.stdout


def public_modes(state: Path) -> list[str]:
    """Files and folders under ``state`` that anyone but their owner may read, write or enter."""
    found = []
    for parent, dirs, files in os.walk(state):
        for name in dirs + files:
            path = Path(parent, name)
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                found.append(f"{path} {stat.filemode(mode)}")
    return found


@pytest.fixture(scope="module")
def state(module_scratch_dir: Callable[[str], Path]) -> Path:
    return module_scratch_dir("ioc-up-") / "state"


def test_up_serves_live_data_and_ctrl_c_leaves_no_process(state: Path) -> None:
    proc, ports = ioc_up(state)
    try:
        banner = wait_up(proc)
        text = "\n".join(banner)
        assert f"http://localhost:{ports['http']}/wall" in text
        # The database URL without its password, and where the password is.
        owner_password = (state / "postgres" / "passwords" / "owner").read_text().strip()
        assert f"postgresql://ioc_owner@127.0.0.1:{ports['db']}/ioc" in text
        assert f"password in {state / 'postgres' / 'passwords' / 'owner'}" in text
        assert owner_password not in text
        assert f"mqtt://127.0.0.1:{ports['mqtt']}" in text
        descendants = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in descendants)
        for part in ("postgres", "mosquitto", "ioc.cli ingest", "ioc.cli serve", "ioc.cli simulate", "ioc.cli open"):
            assert part in names, f"{part} not running under ioc up"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            h = health(ports["http"])
            stored = int(psql(state, ports["db"], "SELECT count(*) FROM measurements"))
            if h["status"] == "ok" and h["ingest"]["ok"] and stored > 0:
                break
            time.sleep(1)
        assert h["database"]["ok"] and h["database"]["timescaledb"], h
        assert h["broker"]["ok"] and h["ingest"]["ok"], h
        assert stored > 0, "simulated data stored within 60 s"
        assert {name: p["state"] for name, p in h["processes"].items()} == {
            "ingest": "running",
            "serve": "running",
            "simulate": "running",
            "open": "running",
        }, h
        # Logs, generated configs and secrets are the owner's only; the folder itself too.
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert public_modes(state) == []
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(90)
    assert code == 0
    deadline = time.monotonic() + 5  # a child may still be on its way out
    while (alive := [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
    assert all(port_free(p) for p in ports.values())


def test_second_up_reuses_the_data_and_reset_empties_it(state: Path) -> None:
    proc, ports = ioc_up(state, "--no-simulators")
    try:
        banner = "\n".join(wait_up(proc))
        assert "off (--no-simulators)" in banner
        assert int(psql(state, ports["db"], "SELECT count(*) FROM measurements")) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
    cluster = (state / "postgres").resolve()
    proc, ports = ioc_up(state, "--no-simulators", "--reset")
    try:
        wait_up(proc)
        assert not cluster.exists() or cluster == (state / "postgres").resolve(), "--reset left the old cluster"
        assert int(psql(state, ports["db"], "SELECT count(*) FROM measurements")) == 0
        assert int(psql(state, ports["db"], "SELECT count(*) FROM devices")) == 0  # no demo fleet without simulators
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0


def one_line_error(proc: subprocess.Popen[str]) -> str:
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    errors = [ln for ln in err.splitlines() if ln.startswith("ioc up:")]
    assert len(errors) == 1, err
    return errors[0]


def test_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        cmd = [sys.executable, "-m", "ioc.cli", "up", "--state-dir", str(tmp_path / "s"), "--http-port", str(busy)]
        line = one_line_error(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    assert f"port {busy}" in line and "--http-port" in line


def test_missing_binary_is_one_clear_line(state: Path) -> None:
    proc, _ = ioc_up(state.with_name("missing"), env={"IOC_MOSQUITTO_BIN": "/nonexistent/mosquitto"})
    line = one_line_error(proc)
    assert "Mosquitto broker not found" in line and "make setup" in line
    assert not list(state.with_name("missing").glob("postgres/data/postmaster.pid")), "nothing was started"


def test_broken_database_url_is_one_clear_line(tmp_path: Path) -> None:
    url = f"postgresql://ioc:wrong@127.0.0.1:{free_port()}/ioc"
    proc, _ = ioc_up(tmp_path / "s", "--no-simulators", env={"IOC_DATABASE_URL": url})
    line = one_line_error(proc)
    assert "cannot reach the database" in line and "IOC_DATABASE_URL" in line
    assert "wrong" not in line  # no password in messages


def test_no_simulators_starts_empty_and_every_command_finds_the_database(
    module_scratch_dir: Callable[[str], Path],
) -> None:
    """A real deployment's first start: an empty registry, then `ioc devices import` and friends beside the
    running `ioc up`, each finding the database in the state folder (no IOC_DATABASE_URL), and every process
    connected as its own role."""
    state = module_scratch_dir("ioc-real-") / "state"
    proc, ports = ioc_up(state, "--no-simulators")
    try:
        wait_up(proc)
        assert int(psql(state, ports["db"], "SELECT count(*) FROM devices")) == 0
        assert int(psql(state, ports["db"], "SELECT count(*) FROM zones")) == 0
        env = {"IOC_STATE_DIR": str(state)}
        fleet = REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml"
        assert "imported" in ioc_cli("devices", "import", str(fleet), env=env)
        assert len(ioc_cli("--state-dir", str(state), "devices", "list").splitlines()) >= 100
        assert "admin\tadmin" in ioc_cli("users", "list", env=env)
        assert "migrated" in ioc_cli("migrate", env=env)
        clients = (
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'ioc' AND backend_type = 'client backend'"
        )
        roles = set(psql(state, ports["db"], clients, "postgres").split())  # only a superuser sees every session
        # ioc_read: the server's open data pool (read-only role); postgres: this very query
        assert roles == {"ioc_ingest", "ioc_serve", "ioc_read", "postgres"}, roles
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0


def test_crash_loop_is_reported_while_everything_else_keeps_running(
    module_scratch_dir: Callable[[str], Path],
) -> None:
    """An ingest that cannot start (its spool folder is a file) is restarted with backoff and reported as
    failing in health; the database, broker and server stay up; it recovers once the cause is gone."""
    root = module_scratch_dir("ioc-crash-")
    blocker = root / "spool-is-a-file"
    blocker.write_text("not a folder\n")
    proc, ports = ioc_up(root / "state", "--no-simulators", env={"IOC_INGEST_SPOOL_DIR": str(blocker)})
    try:
        wait_up(proc)
        failing = wait_for(
            lambda: (p := health(ports["http"]).get("processes", {}).get("ingest")) and p["state"] == "failing" and p,
            60,
            0.5,
            "the ingest reported as failing",
        )
        assert failing["restarts"] >= 2 and failing["last_exit_code"] not in (0, None), failing
        h = health(ports["http"])
        assert h["status"] == "degraded" and h["processes"]["serve"]["state"] == "running", h
        assert h["database"]["ok"] and h["broker"]["ok"], h
        assert proc.poll() is None, "ioc up gave up"
        blocker.unlink()  # the operator fixes the cause: the next scheduled start succeeds
        wait_for(lambda: health(ports["http"])["ingest"]["ok"], 90, 0.5, "the ingest's heartbeat after the fix")
        assert health(ports["http"])["processes"]["ingest"]["restarts"] > failing["restarts"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(90) == 0


def _demo_from_clone(home: Path, relocated: bool, owner: str | None = None, env: dict[str, str] | None = None) -> None:
    """`git clone ... ioc && cd ioc && make demo` inside ``home`` (its clone owned by ``owner`` if given): the
    demo comes up with data, no permission changes, the cluster inside the clone or (``relocated``) linked
    from .ioc to where the postgres user reaches it; Ctrl-C frees every port."""
    mode = stat.S_IMODE(home.stat().st_mode)
    clone = home / "ioc"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(REPO_ROOT / ".venv")  # `make setup` finds it up to date instead of installing
    if owner:
        subprocess.run(["chown", "-R", "-h", f"{owner}:{owner}", str(clone)], check=True)
    ports = {"IOC_HTTP_PORT": free_port(), "IOC_MQTT_PORT": free_port(), "IOC_DB_PORT": free_port(),
             "IOC_OPEN_HTTP_PORT": free_port(), "IOC_OPEN_MQTT_PORT": free_port()}  # fmt: skip
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    make = subprocess.Popen(
        ["make", "demo"],
        cwd=clone,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env, **(env or {}), **{k: str(v) for k, v in ports.items()}},
        start_new_session=True,  # Ctrl-C goes to the whole foreground group, as in a terminal
    )
    try:
        wait_up(make, 180)
        state = clone / ".ioc"
        if relocated:
            assert (state / "postgres").is_symlink() and (state / "postgres").resolve().parent == CLUSTERS_DIR
        else:
            assert (state / "postgres").is_dir() and not (state / "postgres").is_symlink()
        assert stat.S_IMODE(home.stat().st_mode) == mode, "no permission was changed"
        wait_for(
            lambda: health(ports["IOC_HTTP_PORT"])["status"] == "ok"
            and int(psql(state, ports["IOC_DB_PORT"], "SELECT count(*) FROM measurements")) > 0,
            90,
            1,
            "the demo's data on a healthy stack",
        )
        # Beside it, from the clone: the default state folder .ioc holds the credentials.
        assert len(ioc_cli("devices", "list", cwd=clone, env=env).splitlines()) >= 100
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(90)
    assert all(port_free(p) for p in ports.values())


def test_readme_demo_from_a_clone_in_a_private_folder(module_scratch_dir: Callable[[str], Path]) -> None:
    """`git clone ... ioc && cd ioc && make demo` inside a 0700 folder (root's home, mktemp -d) works without
    changing any permission. As root the cluster lives where the postgres user reaches it, linked from .ioc;
    as anyone else PostgreSQL runs as that person, who can enter their own folder, so it stays in place."""
    home = module_scratch_dir("ioc-home-")
    home.chmod(0o700)
    _demo_from_clone(home, relocated=os.geteuid() == 0)


def test_readme_demo_with_sudo_from_a_0750_home(module_scratch_dir: Callable[[str], Path]) -> None:
    """`sudo make demo` from a clone in a person's 0750 home (Ubuntu's default).

    As root: a real account is made for the test (useradd, home 0750, the clone its own), and the demo runs
    as root with the environment sudo gives (SUDO_USER, SUDO_UID, HOME=/root). sudo itself is not installed
    here and is outside what scripts/setup-system.sh installs, so its environment is reproduced instead; what
    matters to ioc is the effective user (root) and the folder's owner and mode, which are real. The postgres
    user cannot enter that home, so the cluster lives outside it. Not as root: the person's own 0750 home,
    which they can enter, holds the cluster in place."""
    home = module_scratch_dir("ioc-home-") / "person"
    home.mkdir(mode=0o750)
    home.chmod(0o750)
    if os.geteuid() != 0:
        _demo_from_clone(home, relocated=False)
        return
    name = f"iocdemo{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--user-group", name], check=True)
    try:
        subprocess.run(["chown", f"{name}:{name}", str(home)], check=True)
        uid = pwd.getpwnam(name)
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(home)], check=False)
        assert probe.returncode != 0, "the postgres user must not be able to enter the person's home"
        env = {"SUDO_USER": name, "SUDO_UID": str(uid.pw_uid), "SUDO_GID": str(uid.pw_gid), "HOME": "/root"}
        _demo_from_clone(home, relocated=True, owner=name, env=env)
    finally:
        subprocess.run(["userdel", name], check=False)

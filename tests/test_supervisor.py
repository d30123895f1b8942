"""ioc.supervisor's restart policy with real child processes and a clock the test moves, and its line on the wall."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from ioc.processes import Child, spawn
from ioc.supervisor import BACKOFF_MAX_S, FAILING_AFTER, STABLE_S, STATUS_FILE, Supervisor, backoff, read_status


class Clock:
    """Monotonic time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def crasher(name: str) -> Child:
    """A child that exits with code 3 at once."""
    return spawn(name, [sys.executable, "-c", "raise SystemExit(3)"], None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def supervisor(tmp_path: Path, clock: Clock) -> Supervisor:
    started: list[Child] = []

    def start(name: str) -> Child:
        started.append(crasher(name))
        return started[-1]

    sup = Supervisor(start, tmp_path / "processes.json", clock=clock)
    sup.add("ingest", start("ingest"))
    return sup


def exit_now(sup: Supervisor, name: str = "ingest") -> None:
    """Wait (really) until the child has exited, then let the supervisor notice."""
    child = sup.entries[name].child
    assert child is not None
    child.proc.wait(10)
    sup.poll()


def test_backoff_doubles_up_to_a_ceiling() -> None:
    assert [backoff(n) for n in range(9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(100) == BACKOFF_MAX_S


def test_a_crash_loop_backs_off_is_reported_failing_and_never_given_up(supervisor: Supervisor, clock: Clock) -> None:
    status = supervisor.entries["ingest"].status
    for exits in range(1, 21):
        exit_now(supervisor)
        assert status.failures == exits and status.last_exit_code == 3
        assert status.state == ("failing" if exits >= FAILING_AFTER else "running" if exits == 1 else "restarting")
        wait = backoff(exits - 1)
        if wait:
            assert supervisor.entries["ingest"].child is None, "started again before its backoff was over"
            clock.now += wait - 0.1
            supervisor.poll()
            assert supervisor.entries["ingest"].child is None
            clock.now += 0.1
            supervisor.poll()
        assert supervisor.entries["ingest"].child is not None, f"not started again after exit {exits}"
    assert status.restarts == 20 and status.state == "failing"


def test_a_process_that_ran_for_minutes_starts_again_with_a_fresh_budget(supervisor: Supervisor, clock: Clock) -> None:
    """Five crashes over days never add up to a crash loop."""
    status = supervisor.entries["ingest"].status
    for _ in range(5):
        clock.now += STABLE_S  # it ran that long before exiting
        exit_now(supervisor)
        assert status.failures == 1 and status.state == "running"
        assert supervisor.entries["ingest"].child is not None, "a stable process is started again at once"
    assert status.restarts == 5


def test_a_stable_run_clears_failing(supervisor: Supervisor, clock: Clock) -> None:
    status = supervisor.entries["ingest"].status
    while status.state != "failing":
        exit_now(supervisor)
        clock.now += backoff(status.failures - 1)
        if status.state != "failing":
            supervisor.poll()
    assert supervisor.entries["ingest"].child is None
    supervisor.start = lambda name: spawn(name, [sys.executable, "-c", "import time; time.sleep(30)"], None)
    supervisor.poll()  # the cause is gone: this start keeps running
    child = supervisor.entries["ingest"].child
    assert child is not None and status.state == "failing", "failing until it has run for STABLE_S"
    clock.now += STABLE_S
    supervisor.poll()
    assert (status.state, status.failures) == ("running", 0)
    child.stop(5)


def test_the_status_file_is_private_and_read_only_while_its_supervisor_lives(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    exit_now(supervisor)
    path = tmp_path / "processes.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    processes = read_status(tmp_path)
    assert processes is not None and processes["ingest"]["restarts"] == 1
    assert set(processes["ingest"]) == {"state", "restarts", "failures", "last_exit_code", "since"}
    gone = spawn("gone", [sys.executable, "-c", "pass"], None)
    gone.proc.wait(10)
    path.write_text(json.dumps({**json.loads(path.read_text()), "supervisor_pid": gone.proc.pid}))
    assert read_status(tmp_path) is None, "a status left by a dead ioc up is not shown"
    supervisor.remove()
    assert read_status(tmp_path) is None


@pytest.mark.browser
@pytest.mark.asyncio(loop_scope="session")
async def test_the_wall_shows_a_failing_process_in_its_health_panel(stack, live_server, open_page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """What the supervisor publishes reaches the wall: one line while a process keeps failing, none after."""
    path = stack.state_dir / STATUS_FILE
    failing = {"state": "failing", "restarts": 7, "failures": 7, "last_exit_code": 1, "since": time.time()}
    running = {"state": "running", "restarts": 0, "failures": 0, "last_exit_code": None, "since": time.time()}
    path.write_text(json.dumps({"supervisor_pid": os.getpid(), "processes": {"ingest": failing, "serve": running}}))
    try:
        watched = await open_page(live_server.url + "/wall?lang=en")
        line = watched.page.locator("#health-processes")
        await line.wait_for(state="visible", timeout=10000)
        assert await line.text_content() == "ingest keeps failing: restarted 7 times, last exit code 1"
    finally:
        path.unlink()
    await line.wait_for(state="hidden", timeout=20000)  # the wall asks again every 15 s
    watched.assert_clean()

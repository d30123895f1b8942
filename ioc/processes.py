"""Child processes and local ports: start a child that dies with us, stop it, wait for its port.

`ioc up`, the embedded cluster and broker, the supervisor and the test fixtures all start processes here.
Children are started from the main thread with a parent-death signal, so they never outlive us.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ioc.errors import StackError

logger = logging.getLogger(__name__)

SETUP_HINT = "run 'make setup' (as root or with sudo) to install it"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGTERM the child when its parent dies (even by kill -9)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_port(port: int, what: str, flag: str) -> None:
    """Raise a one-line StackError when ``port`` is taken."""
    if not port_free(port):
        raise StackError(
            f"port {port} for {what} is already in use: stop whatever listens there "
            f"(e.g. 'ss -ltnp | grep :{port}') or choose another with {flag} N"
        )


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, what: str = "") -> None:
    """Wait until something accepts on 127.0.0.1:port, failing early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what or 'process'} exited with code {proc.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise StackError(f"{what or 'service'} did not accept connections on port {port} within {timeout:.0f} s")


@dataclass
class Child:
    """A supervised child process and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes] | None = None
    stop_signal: int = signal.SIGTERM

    def stop(self, timeout: float = 15.0) -> None:
        """Signal the child, wait, and kill it if it does not exit in time."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(self.stop_signal)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s: killing it", self.name, timeout)
                self.proc.kill()
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self.log is not None:
            self.log.close()


def _private_opener(path: str, flags: int) -> int:
    """``open`` opener creating files readable by their owner only."""
    return os.open(path, flags, 0o600)


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path | None,
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    cwd: Path | None = None,
) -> Child:
    """Start ``argv`` with output to ``log_path`` (or inherited), dying with this process."""
    # Logs are private: they name devices, users and addresses.
    # Private (0600) from creation; opened by name so ``log.name`` stays the path callers show.
    log = open(log_path, "ab", opener=_private_opener) if log_path else None  # noqa: SIM115 - owned by the Child
    proc = subprocess.Popen(  # noqa: S603 - argv is built here, never from user strings
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        stdin=subprocess.DEVNULL,
        env=env,
        user=user,
        preexec_fn=_die_with_parent,
        start_new_session=True,
        cwd=cwd,
    )
    logger.debug("started %s pid=%s", name, proc.pid)
    return Child(name, proc, log, stop_signal)



def find_installed(candidates: Sequence[Path], what: str) -> Path:
    """The first of ``candidates`` that exists, or a StackError saying how to install ``what``."""
    for path in candidates:
        if path.exists():
            return path
    raise StackError(f"{what} not found at {', '.join(map(str, candidates))}: {SETUP_HINT}")


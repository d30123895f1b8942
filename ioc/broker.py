"""The embedded broker: a private Mosquitto configured from the repository's mosquitto.conf.

`ioc up` and the test fixtures both use it, so the tests exercise what users run.
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from ioc.errors import StackError
from ioc.processes import SETUP_HINT, Child, find_installed, require_port, spawn, wait_port
from ioc.settings import REPO_ROOT

logger = logging.getLogger(__name__)

# Our build first (scripts/setup-system.sh: Mosquitto 2.0.21 with broker/'s patch), then a distribution's.
MOSQUITTO_CANDIDATES = (Path("/usr/local/sbin/mosquitto"), Path("/usr/sbin/mosquitto"), Path("/usr/bin/mosquitto"))
# Where that build puts the ioc_guard plugin and its BUILD stamp (a binary without the stamp is unpatched).
MOSQUITTO_LIBDIR = Path("/usr/local/lib/ioc-mosquitto")
GUARD_PLUGIN = MOSQUITTO_LIBDIR / "ioc_guard.so"


@dataclass
class EmbeddedMosquitto:
    """A private Mosquitto configured from the repository's mosquitto.conf."""

    root: Path
    port: int
    template: Path = REPO_ROOT / "mosquitto.conf"
    extra: list[str] = field(default_factory=list)
    binary: Path | None = None
    child: Child | None = field(default=None, init=False)

    REPLACED = (
        "listener",
        "persistence_location",
        "log_dest",
        "allow_anonymous",
        "password_file",
        "acl_file",
        "user",
        "include_dir",
    )

    @property
    def conf_path(self) -> Path:
        """The generated configuration file."""
        return self.root / "mosquitto.conf"

    def write_config(self) -> Path:
        """Write the broker configuration: the repository's file with our ports and paths."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        try:
            template = self.template.read_text()
        except OSError as exc:
            raise StackError(f"cannot read {self.template}: {exc}") from exc
        kept = [ln for ln in template.splitlines() if ln.split(" ", 1)[0] not in self.REPLACED]
        kept += [
            "# --- written by ioc.broker ---",
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            f"persistence_location {self.root / 'data'}/",
            "log_dest stdout",
            *(self.extra or ["allow_anonymous true"]),
        ]
        # 0600: the file names the password and ACL files and the plugin's rules; no one else needs it.
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(kept) + "\n")
        os.chmod(self.conf_path, 0o600)
        return self.conf_path

    def find_binary(self) -> Path:
        """The mosquitto executable, or a StackError saying how to install it."""
        return find_installed((self.binary,) if self.binary else MOSQUITTO_CANDIDATES, "Mosquitto broker")

    def check_build(self, binary: Path, config: str) -> None:
        """Refuse a config whose plugin is not installed; warn loudly when the broker lacks ioc's patch."""
        for line in config.splitlines():
            if line.startswith("plugin ") and not Path(line.split(" ", 1)[1]).is_file():
                raise StackError(f"the broker plugin {line.split(' ', 1)[1]} is missing: {SETUP_HINT}")
        if not (binary.resolve().parent.parent / "lib" / MOSQUITTO_LIBDIR.name / "BUILD").is_file():
            logger.warning(
                "%s is not ioc's Mosquitto build: it forgets the ingest's shared subscription on restart, so "
                "messages published while the ingest reconnects after a broker restart are lost (%s)",
                binary,
                SETUP_HINT,
            )

    def start(self, log_path: Path | None = None, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections."""
        binary = self.find_binary()
        require_port(self.port, "MQTT", "--mqtt-port")
        self.check_build(binary, self.write_config().read_text())
        self.child = spawn(
            "mosquitto", [str(binary), "-c", str(self.conf_path)], log_path or self.root / "mosquitto.log"
        )
        wait_port(self.port, timeout, self.child.proc, f"Mosquitto (log: {log_path or self.root / 'mosquitto.log'})")

    def reload(self) -> None:
        """Ask the broker to re-read its password and ACL files (SIGHUP)."""
        if self.child and self.child.proc.poll() is None:
            self.child.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop the broker (it saves its persistence file on SIGTERM)."""
        if self.child:
            self.child.stop()
            self.child = None

    @property
    def url(self) -> str:
        """The broker URL."""
        return f"mqtt://127.0.0.1:{self.port}"

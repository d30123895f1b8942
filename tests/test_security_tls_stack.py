"""TLS end to end: the embedded broker's TLS listener from settings, an ingest worker on mqtts:// verifying a
throwaway CA, and a device publishing over TLS whose reading is stored."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest

from ioc.processes import free_port, spawn
from ioc.provisioning import with_credentials
from ioc.settings import Settings
from ioc.up import Stack
from tests.support.stack import log_tail


def test_ingest_over_tls_with_a_throwaway_ca(throwaway_ca: Path, scratch_dir: Callable[[str], Path]) -> None:
    root = scratch_dir("ioc-tls-")
    tls_port = free_port()
    settings = Settings(
        state_dir=root,
        db_port=free_port(),
        mqtt_port=free_port(),
        environment="test",
        mqtt_tls_cert=throwaway_ca / "server.crt",
        mqtt_tls_key=throwaway_ca / "server.key",
        mqtt_tls_port=tls_port,
    )
    stack = Stack(settings, fast_db=True)
    stack.prepare_state(reset=False)
    stack.start_services()
    try:
        assert stack.postgres is not None and stack.broker_files is not None
        stack.postgres.psql("INSERT INTO devices (device_id, kind, name) VALUES ('T-TLS-1', 'flood', 'tls')")
        url = with_credentials(f"mqtts://127.0.0.1:{tls_port}", stack.broker_files.credentials["ingest"])
        env = {
            **stack.child_env("ingest"),
            "IOC_MQTT_URL": url,
            "IOC_MQTT_TLS_CA": str(throwaway_ca / "ca.crt"),
            "IOC_INGEST_METRICS_PORT": "0",
        }
        worker = spawn(
            "ingest-tls",
            [sys.executable, "-m", "ioc.cli", "ingest", "--client-id", "tls"],
            root / "logs" / "ingest-tls.log",
            env=env,
        )
        user, password = (unquote(p) for p in stack.broker_files.credentials["simulate"].split(":", 1))
        payload = f'{{"ts": {time.time():.3f}, "metrics": {{"water_level_cm": 7.5}}}}'
        deadline = time.monotonic() + 30
        stored = ""
        while time.monotonic() < deadline and stored != "7.5":
            assert worker.proc.poll() is None, log_tail(worker)
            subprocess.run(
                [
                    "mosquitto_pub",
                    "-h",
                    "localhost",
                    "-p",
                    str(tls_port),
                    "--cafile",
                    str(throwaway_ca / "ca.crt"),
                    "-u",
                    user,
                    "-P",
                    password,
                    "-q",
                    "1",
                    "-t",
                    "ioc/v1/flood/T-TLS-1/telemetry",
                    "-m",
                    payload,
                ],
                check=True,
                timeout=10,
            )
            time.sleep(1)
            stored = stack.postgres.psql("SELECT max(value) FROM measurements WHERE device_id = 'T-TLS-1'")
        assert stored == "7.5", log_tail(worker)
        # Without the CA the broker's certificate is not trusted.
        refused = subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                "localhost",
                "-p",
                str(tls_port),
                "--capath",
                "/nonexistent",
                "-u",
                user,
                "-P",
                password,
                "-t",
                "ioc/v1/flood/T-TLS-1/telemetry",
                "-m",
                payload,
            ],
            capture_output=True,
            timeout=10,
        )
        assert refused.returncode != 0
        worker.stop()
    finally:
        stack.stop()


def test_tls_cert_and_key_go_together() -> None:
    with pytest.raises(ValueError, match="IOC_MQTT_TLS_CERT and IOC_MQTT_TLS_KEY"):
        Settings(mqtt_tls_cert=Path("/tmp/cert.pem"))

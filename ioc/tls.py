"""TLS for MQTT: the broker's extra listener and the clients' verifying context."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ioc.errors import ConfigError


@dataclass(frozen=True, slots=True)
class TlsListener:
    """A Mosquitto TLS listener: certificate chain and key, optionally a CA to demand client certificates."""

    port: int
    cert: Path
    key: Path
    host: str = "0.0.0.0"
    client_ca: Path | None = None

    def __post_init__(self) -> None:
        for what, path in (("certificate", self.cert), ("key", self.key), ("client CA", self.client_ca)):
            if path is not None and not path.is_file():
                raise ConfigError(f"MQTT TLS {what} {path} does not exist or is not a file")

    def config_lines(self) -> list[str]:
        """Mosquitto directives for this listener (append them after every other line of the config)."""
        lines = [
            f"listener {self.port} {self.host}",
            f"certfile {self.cert.resolve()}",
            f"keyfile {self.key.resolve()}",
            "tls_version tlsv1.2",
        ]
        if self.client_ca is not None:
            lines += [f"cafile {self.client_ca.resolve()}", "require_certificate true"]
        return lines


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A client context verifying the broker against ``ca_file`` (or the system's CAs) and its host name."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context

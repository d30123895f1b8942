"""The one place that reads the environment: every setting, validated at start-up."""

from __future__ import annotations

import ipaddress
import json
import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
# The URL settings and the schemes each takes (with how its error message names them).
URL_SCHEMES: dict[str, tuple[frozenset[str], str]] = {
    "database_url": (frozenset({"postgresql", "postgres", "postgresql+asyncpg"}), "postgresql://"),
    "open_database_url": (frozenset({"postgresql", "postgres"}), "postgresql://"),
    "mqtt_url": (frozenset({"mqtt", "mqtts", "tcp"}), "mqtt:// or mqtts://"),
    "open_mqtt_url": (frozenset({"mqtt", "tcp"}), "mqtt://"),
}


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as ``IOC_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="IOC_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "text"

    # Where things are. Empty URLs mean "the embedded stack under state_dir".
    state_dir: Path = Path(".ioc")
    # Each process's own role (ioc/grants.py): `ioc up` gives ingest and serve theirs.
    database_url: str = ""
    mqtt_url: str = ""
    # A file holding the MQTT password (container secrets): used when IOC_MQTT_URL names a user only.
    mqtt_password_file: Path | None = None
    # TLS: the embedded broker adds a TLS listener when cert and key are set; clients of mqtts:// URLs
    # verify the broker against mqtt_tls_ca (default: the system's CAs).
    mqtt_tls_cert: Path | None = None
    mqtt_tls_key: Path | None = None
    mqtt_tls_port: int = Field(8883, ge=1, le=65535)
    mqtt_tls_ca: Path | None = None
    http_host: str = "0.0.0.0"
    http_port: int = Field(8000, ge=1, le=65535)
    mqtt_port: int = Field(1883, ge=1, le=65535)
    db_port: int = Field(55432, ge=1, le=65535)
    public_url: str = ""
    # Where the embedded stack finds its servers (default: Debian's paths).
    pg_bindir: Path | None = None
    mosquitto_bin: Path | None = None

    # Device contract.
    topic_prefix: str = "ioc/v1"
    kinds_file: Path | None = None
    fleet_file: Path = REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml"
    # History the first `ioc up` with simulators stores (days before now; 0 = none), and its device faults.
    sim_backfill_days: float = Field(14, ge=0, le=400)
    sim_backfill_faults: str = "0.002"

    # Ingest.
    # The MQTT client id is the worker's identity: stable across restarts so the broker resumes its session.
    ingest_client_id: str = Field(default_factory=lambda: f"ioc-ingest-{socket.gethostname()}")
    # How long the broker keeps a crashed worker's session (and its share of the stream) for its return.
    ingest_session_expiry_s: int = Field(3600, ge=0)
    ingest_share_group: str = "ioc-ingest"
    ingest_batch_max: int = Field(2000, ge=1, le=100_000)
    ingest_writers: int = Field(2, ge=1, le=8)  # database connections committing batches concurrently
    ingest_batch_wait_ms: int = Field(100, ge=1, le=10_000)
    ingest_max_inflight: int = Field(10_000, ge=10, le=65_535)
    ingest_auto_register: bool = False
    ingest_max_payload_bytes: int = Field(64 * 1024, ge=256)
    ingest_max_snapshot_bytes: int = Field(512 * 1024, ge=1024)
    ingest_max_json_depth: int = Field(8, ge=2, le=64)
    ingest_future_skew_s: int = Field(300, ge=0)
    ingest_past_window_s: int = Field(7 * 86400, ge=60)
    ingest_rate_limit_per_s: float = Field(20.0, gt=0)
    ingest_rate_burst: int = Field(200, ge=1)
    # Quarantine budget per device and reason: this many rows per window (and a total per window for the
    # whole fleet), each payload cut to sample bytes; the rest are only counted (quarantine_overflow), so no
    # device, nor many at once, can fill the disk.
    ingest_quarantine_samples: int = Field(10, ge=0, le=10_000)
    ingest_quarantine_total_samples: int = Field(1000, ge=0, le=1_000_000)
    ingest_quarantine_window_s: int = Field(3600, ge=1, le=86_400)
    ingest_quarantine_sample_bytes: int = Field(2048, ge=0, le=1024 * 1024)
    ingest_spool_dir: Path | None = None
    ingest_spool_max_bytes: int = Field(1024**3, ge=1024 * 1024)
    ingest_metrics_port: int = Field(9101, ge=0, le=65535)
    retention_raw_days: int = Field(30, ge=1)
    retention_rollup_days: int = Field(5 * 365, ge=1)
    stale_after_intervals: float = Field(3.0, gt=1)

    # Live server.
    alert_rules_file: Path = REPO_ROOT / "dashboards" / "rules.yaml"
    # Incident types and their procedures (incidents.procedures), one YAML file per type.
    sop_dir: Path = REPO_ROOT / "sop"
    # Field teams' notifications (incidents.notify): e-mail through this server, retries and their backoff.
    smtp_url: str = ""  # smtp://host:port
    smtp_from: str = "ioc@localhost"
    notify_max_attempts: int = Field(6, ge=1, le=50)
    notify_backoff_s: float = Field(5.0, gt=0, le=3600)
    # Field links (incidents.field): how long a new link lives, the largest photo, posts per link per minute.
    field_link_hours: float = Field(12.0, gt=0, le=24 * 30)
    field_photo_max_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    field_posts_per_minute: float = Field(10.0, gt=0, le=600)
    ws_coalesce_ms: int = Field(50, ge=20)  # per channel: at most 20 deltas a second (docs/operations.md, sizing)
    ws_heartbeat_s: float = Field(10.0, gt=0)
    ws_compression: bool = False  # permessage-deflate: costs server CPU per client and message
    map_tile_url: str = ""
    # Origins (scheme://host:port) whose pages may change state and open the websocket, besides
    # public_url's and http://localhost|127.0.0.1|[::1]:http_port. Comma-separated.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Addresses or networks of reverse proxies whose X-Forwarded-For/-Proto are believed. Comma-separated;
    # empty = none: the peer's own address is the client's.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    audit_retention_days: int = Field(365, ge=1)
    # Sessions: people log in per shift; display accounts (the wall) stay logged in for days.
    session_idle_minutes: int = Field(120, ge=1)
    session_absolute_hours: int = Field(12, ge=1)
    session_display_days: int = Field(30, ge=1, le=365)
    # While the database is away, a session confirmed this recently stays valid (0: none does).
    session_outage_grace_minutes: float = Field(10.0, ge=0, le=24 * 60)

    # Open data (/sta/v1.1, public): the policy file, the read-only role's URL (empty: the embedded
    # stack's ioc_read), its own pool and statement time-out, and the per-address request rate.
    open_data_file: Path | None = None
    open_database_url: str = ""
    open_pool_size: int = Field(4, ge=1, le=64)
    open_statement_timeout_ms: int = Field(3000, ge=100, le=600_000)
    open_rate_per_minute: float = Field(120, gt=0)
    open_rate_burst: int = Field(60, ge=1)
    open_count_exact_ms: int = Field(1000, ge=1, le=600_000)  # $count: exact within this, else an estimate
    # Where the open data is served: inside `ioc serve` (true), or only by `ioc open`, a process of its own whose
    # CPU priority is lowered by open_nice so public load cannot take the wall's CPU.
    open_in_serve: bool = True
    open_nice: int = Field(10, ge=0, le=19)
    # Open data bulk files (opendata/bulk.py): where (empty: state_dir/open-data), how many complete days are kept,
    # how often the leader checks for a new day; API keys' default quotas (`ioc apikeys add` may set others).
    open_bulk_dir: Path | None = None
    open_bulk_job: bool = True
    open_bulk_days: int = Field(30, ge=1, le=366)
    open_bulk_every_s: float = Field(900.0, ge=1, le=86_400)
    open_key_rate_per_minute: int = Field(1200, ge=1)
    open_key_rows_per_day: int = Field(5_000_000, ge=1)
    # At most open_max_concurrent requests read the database at once and open_max_waiting wait for a turn;
    # beyond that a 503 with Retry-After (public load is shed, not queued without end).
    open_max_concurrent: int = Field(4, ge=1, le=256)
    open_max_waiting: int = Field(16, ge=0, le=10_000)
    # The same public request is answered from memory (opendata/cache.py) for up to open_cache_ms, and never after
    # the ingest's next commit notice (0: no cache); Cache-Control max-age is its whole seconds.
    open_cache_ms: int = Field(1000, ge=0, le=60_000)
    # The MQTT read side (opendata/mqtt.py): the public broker with the publisher's account (empty: no MQTT push)
    # and the open API's public root for the messages' links (empty: public_url, else http://localhost:8001).
    open_mqtt_url: str = ""
    open_mqtt_password_file: Path | None = None
    open_api_url: str = ""
    # `ioc up`'s `ioc open` and public broker (empty: 8001 and 1884, or free ports when those are taken).
    open_http_port: int | None = Field(None, ge=1, le=65535)
    open_mqtt_port: int | None = Field(None, ge=1, le=65535)
    # Forecasts (forecast/, docs/forecasting.md): the job in `ioc serve` forecasts every forecast_every_s
    # and trains new models every forecast_retrain_hours on the last forecast_history_days of rollups.
    forecast_enabled: bool = True
    forecast_tide_file: Path = REPO_ROOT / "forecast" / "tide.yaml"
    forecast_every_s: float = Field(60.0, ge=5, le=3600)
    forecast_retrain_hours: float = Field(24.0, gt=0, le=24 * 30)
    forecast_history_days: int = Field(28, ge=3, le=365)
    # One thread: LightGBM's OpenMP threads spin-wait, and on a shared 2-core machine two threads took 15x the
    # CPU of one for the same model (docs/forecasting.md).
    forecast_threads: int = Field(1, ge=1, le=64)

    @field_validator("allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)  # the JSON list form pydantic-settings reads by default
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
                raise ValueError(f"IOC_ALLOWED_ORIGINS takes scheme://host[:port] origins (got {origin!r})")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(f"IOC_TRUSTED_PROXIES takes addresses or networks (got {proxy!r})") from exc
        return value

    @field_validator(*URL_SCHEMES)
    @classmethod
    def _url_scheme(cls, value: str, info: ValidationInfo) -> str:
        schemes, shown = URL_SCHEMES[info.field_name or ""]
        if value and urlsplit(value).scheme not in schemes:
            raise ValueError(f"IOC_{(info.field_name or '').upper()} must start with {shown} (got {value!r})")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.mqtt_tls_cert is None) != (self.mqtt_tls_key is None):
            raise ValueError("IOC_MQTT_TLS_CERT and IOC_MQTT_TLS_KEY must be set together")
        return self

    @model_validator(mode="after")
    def _production_is_explicit(self) -> Settings:
        if self.environment == "production" and not (self.database_url and self.mqtt_url):
            raise ValueError(
                "production needs IOC_DATABASE_URL and IOC_MQTT_URL; the embedded stack is for development"
            )
        return self

    @property
    def bulk_dir(self) -> Path:
        """Where the open data bulk files are written and served from."""
        return self.open_bulk_dir or (self.state_dir / "open-data")

    @property
    def embedded(self) -> bool:
        """True when the database and broker are the private ones under ``state_dir``."""
        return not self.database_url and not self.mqtt_url

    def resolved_database_url(self) -> str:
        """The database URL in libpq form (``postgresql://``); empty: the embedded cluster's owner, whose
        password the ``ioc`` command reads from the state folder (ioc.cluster.embedded_database_url)."""
        url = self.database_url or f"postgresql://ioc_owner@127.0.0.1:{self.db_port}/ioc"
        return url.replace("postgresql+asyncpg://", "postgresql://").replace("postgres://", "postgresql://")

    def resolved_mqtt_url(self) -> str:
        """The broker URL (``mqtt://user:pass@host:port``), the password read from IOC_MQTT_PASSWORD_FILE if set."""
        return _with_password(self.mqtt_url or f"mqtt://127.0.0.1:{self.mqtt_port}", self.mqtt_password_file)

    def resolved_open_mqtt_url(self) -> str:
        """The public broker's URL for the open data publisher (empty: no MQTT push), the password read from
        IOC_OPEN_MQTT_PASSWORD_FILE if set."""
        return _with_password(self.open_mqtt_url, self.open_mqtt_password_file) if self.open_mqtt_url else ""

    def spool_dir(self) -> Path:
        """Directory of the ingest's on-disk spool."""
        return self.ingest_spool_dir or (self.state_dir / "spool" / self.ingest_client_id)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def _with_password(url: str, password_file: Path | None) -> str:
    """``url`` with the password of ``password_file`` inserted when the URL names a user without one."""
    parts = urlsplit(url)
    if password_file and parts.username and not parts.password:
        secret = quote(password_file.read_text().strip(), safe="")
        url = url.replace(f"{parts.username}@", f"{parts.username}:{secret}@", 1)
    return url

"""Broker accounts: per-device credentials, service accounts, Mosquitto's password and ACL files and
the options of the ioc_guard plugin (broker/ioc_guard.c).

The database is the source of truth (table ``mqtt_accounts``); the broker's two files are generated
from it and the broker re-reads them on SIGHUP. A device may publish only to its own contract topics
(``{prefix}/{kind}/{id}/{channel}``, exactly that depth) and its vendor topic; the plugin adds what the
files cannot say: no SUBSCRIBE for devices, client id == device id, retained only on the device's status,
reserved client ids for the services. The rules are listed in docs/devices.md ("Broker limits").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg

from ioc import audit
from ioc.broker import GUARD_PLUGIN
from ioc.errors import IocError
from ioc.topics import CANONICAL, CANONICAL_PREFIX, TOPIC_FORMS, TopicForm, valid_device_id

logger = logging.getLogger(__name__)

# Mosquitto 2's own default; the secrets are 256-bit random, so more iterations would add nothing.
PBKDF2_ITERATIONS = 101
PBKDF2_SALT_BYTES = 12
# Service usernames contain "." which device ids cannot, so the two never collide.
SERVICE_ACCOUNTS = {"ingest": "ioc.ingest", "serve": "ioc.serve", "simulate": "ioc.simulate"}
# Client ids starting with these are refused to every other account (the ingest's persistent sessions
# hold the city's queued messages; no one else may take them over). The default worker id uses it.
RESERVED_CLIENT_PREFIXES = {"ingest": "ioc-ingest-", "serve": "ioc-serve-"}
# A device's retained message: only its status ("online"/"offline"), at most this many bytes.
RETAIN_MAX_BYTES = 256
PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
# Read by compose's broker through `include_dir` (mosquitto.conf); `ioc up` passes the same lines directly.
GUARD_CONF = Path("conf.d") / "ioc-guard.conf"
SECRETS_DIR = "service-accounts"
_HASH_RE = re.compile(r"^\$7\$(?P<iterations>\d+)\$(?P<salt>[A-Za-z0-9+/=]+)\$(?P<hash>[A-Za-z0-9+/=]+)\Z")


class ProvisioningError(IocError):
    """A device or service account cannot be provisioned or revoked; the message says why."""


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The broker's generated files and the services' connection credentials (``user:password``)."""

    password_file: Path
    acl_file: Path
    credentials: dict[str, str]

    def config_lines(self) -> list[str]:
        """The Mosquitto directives that turn anonymous access off and use these files and the guard plugin."""
        files = [f"password_file {self.password_file}", f"acl_file {self.acl_file}"]
        return ["allow_anonymous false", *files, *guard_lines()]


def guard_lines() -> list[str]:
    """The directives that load ioc_guard with ioc's rules (also written to ``conf.d/`` for compose's broker)."""
    reserved = " ".join(f"{SERVICE_ACCOUNTS[role]}={prefix}" for role, prefix in RESERVED_CLIENT_PREFIXES.items())
    return [
        f"plugin {GUARD_PLUGIN}",
        f"plugin_opt_reserved_client_ids {reserved}",
        f"plugin_opt_retain_max_bytes {RETAIN_MAX_BYTES}",
    ]


def mosquitto_hash(secret: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto 2's ``$7$`` password-file hash: PBKDF2-HMAC-SHA512, base64 salt and digest."""
    salt = salt if salt is not None else secrets.token_bytes(PBKDF2_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(secret: str, encoded: str) -> bool:
    """True when ``secret`` matches a ``$7$`` hash."""
    m = _HASH_RE.match(encoded)
    if m is None:
        return False
    salt, expected = base64.b64decode(m["salt"]), base64.b64decode(m["hash"])
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, int(m["iterations"]))
    return hmac.compare_digest(digest, expected)


def _device_filter(form: TopicForm, device_id: str) -> str:
    """A format's filter narrowed to one device: the ``+`` its topic regex reads as the id becomes the id."""
    parts = form.filter.split("/")
    probe = "/".join(f"p{i}" if p == "+" else p for i, p in enumerate(parts))
    m = form.pattern.match(probe)
    if m is None or not m["device_id"].startswith("p"):
        raise ProvisioningError(f"cannot tell where the device id goes in {form.filter!r}")
    index = int(m["device_id"][1:])
    return "/".join(device_id if i == index else p for i, p in enumerate(parts))


def reserved_prefix(client_id: str) -> str | None:
    """The reserved service prefix ``client_id`` starts with, if any."""
    return next((p for p in RESERVED_CLIENT_PREFIXES.values() if client_id.startswith(p)), None)


def device_topics(device_id: str, kind: str, fmt: str, prefix: str = CANONICAL_PREFIX) -> list[str]:
    """The filters a device may publish to: its contract topics (one channel level) and its vendor topic."""
    if not valid_device_id(device_id):
        raise ProvisioningError(f"device id {device_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    # "+", not "#": a deeper topic is refused by the broker (MQTT 5: PUBACK 0x87), never silently dropped.
    topics = [f"{prefix}/{kind}/{device_id}/+"]
    if fmt != CANONICAL.format and fmt in TOPIC_FORMS:
        topics.append(_device_filter(TOPIC_FORMS[fmt], device_id))
    return topics


def service_acl(role: str) -> list[str]:
    """ACL lines for a service account: ingest and serve read the device topics, simulate writes them."""
    filters = [form.filter for form in TOPIC_FORMS.values()]
    if role in {"ingest", "serve"}:
        # Mosquitto checks "$share/group/filter" against "filter", so these cover shared subscriptions too.
        return [f"topic read {f}" for f in filters]
    if role == "simulate":
        # Publishing needs a pattern matching the concrete topic; a "+" per level is exactly that.
        return [f"topic write {f}" for f in filters]
    raise ProvisioningError(f"unknown service role {role!r}")


async def provision_device(conn: asyncpg.Connection, device_id: str, *, actor: str = "system", source: str = "") -> str:
    """Create or rotate a device's broker credentials; returns the secret (shown once, never stored)."""
    if not valid_device_id(device_id):
        await audit.record(conn, actor, "device.provision", device_id, "failure", source, {"reason": "bad id"})
        raise ProvisioningError(f"device id {device_id!r} must match [A-Za-z0-9_-]{{1,64}} (no '+', '#' or '/')")
    if (reserved := reserved_prefix(device_id)) is not None:
        await audit.record(conn, actor, "device.provision", device_id, "failure", source, {"reason": "reserved id"})
        raise ProvisioningError(f"device id {device_id!r} starts with {reserved!r}, reserved for service client ids")
    if await conn.fetchval("SELECT 1 FROM devices WHERE device_id = $1", device_id) is None:
        await audit.record(conn, actor, "device.provision", device_id, "failure", source, {"reason": "unknown"})
        raise ProvisioningError(f"no device {device_id!r} in the registry: import it first ('ioc devices import')")
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO mqtt_accounts (username, role, device_id, password_hash) VALUES ($1, 'device', $1, $2) "
        "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, rotated_at = now(), "
        "revoked_at = NULL",
        device_id,
        mosquitto_hash(secret),
    )
    await audit.record(conn, actor, "device.provision", device_id, "success", source)
    return secret


async def revoke_device(conn: asyncpg.Connection, device_id: str, *, actor: str = "system", source: str = "") -> bool:
    """Mark a device's credentials revoked (rewrite the files and reload the broker to cut it off)."""
    found = await conn.fetchval(
        "UPDATE mqtt_accounts SET revoked_at = now() WHERE username = $1 AND role = 'device' "
        "AND revoked_at IS NULL RETURNING username",
        device_id,
    )
    await audit.record(
        conn,
        actor,
        "device.revoke",
        device_id,
        "success" if found else "failure",
        source,
        None if found else {"reason": "not provisioned"},
    )
    return found is not None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (the broker never reads a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


async def write_broker_files(conn: asyncpg.Connection, directory: Path, prefix: str = "ioc/v1") -> tuple[Path, Path]:
    """Write Mosquitto's password and ACL files for every live account into ``directory``."""
    rows = await conn.fetch(
        "SELECT a.username, a.role, a.password_hash, d.device_id, d.kind, d.format "
        "FROM mqtt_accounts a LEFT JOIN devices d ON d.device_id = a.device_id "
        "WHERE a.revoked_at IS NULL ORDER BY a.role, a.username"
    )
    passwords: list[str] = []
    acl = [
        "# Generated by ioc.provisioning from the database; edits are overwritten.",
        "# No 'topic' lines before the first 'user': anonymous clients (refused anyway) get nothing.",
    ]
    for r in rows:
        passwords.append(f"{r['username']}:{r['password_hash']}")
        acl += ["", f"user {r['username']}"]
        if r["role"] == "device":
            acl += [f"topic write {t}" for t in device_topics(r["device_id"], r["kind"], r["format"], prefix)]
        else:
            acl += service_acl(r["role"])
    password_file, acl_file = directory / PASSWORD_FILE, directory / ACL_FILE
    write_private(password_file, "\n".join(passwords) + "\n")
    write_private(acl_file, "\n".join(acl) + "\n")
    logger.info("wrote broker files for %d accounts to %s", len(rows), directory)
    return password_file, acl_file


async def ensure_service_accounts(conn: asyncpg.Connection, directory: Path) -> dict[str, str]:
    """Create the services' broker accounts if needed; returns ``{service: "user:password"}`` for their URLs.

    Secrets are kept in ``directory/service-accounts/<service>`` (mode 0600) so a restart reuses them;
    a missing or mismatching file means a new secret.
    """
    folder = directory / SECRETS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    credentials: dict[str, str] = {}
    for role, username in SERVICE_ACCOUNTS.items():
        path = folder / role
        secret = path.read_text().strip() if path.exists() else ""
        stored = await conn.fetchval(
            "SELECT password_hash FROM mqtt_accounts WHERE username = $1 AND revoked_at IS NULL", username
        )
        if not (secret and stored and verify_mosquitto_hash(secret, stored)):
            secret = secrets.token_urlsafe(32)
            await conn.execute(
                "INSERT INTO mqtt_accounts (username, role, password_hash) VALUES ($1, $2, $3) "
                "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                "rotated_at = now(), revoked_at = NULL",
                username,
                role,
                mosquitto_hash(secret),
            )
            write_private(path, secret + "\n")
            await audit.record(conn, "system", "service.credentials", username, "success", "local")
        credentials[role] = f"{quote(username, safe='')}:{quote(secret, safe='')}"
    return credentials


def with_credentials(url: str, userinfo: str) -> str:
    """``mqtt://host:port`` with ``user:password@`` inserted (replacing any already there)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{userinfo}@{rest.rpartition('@')[2]}"


async def prepare_broker(conn: asyncpg.Connection, directory: Path, prefix: str = "ioc/v1") -> BrokerFiles:
    """Service accounts, both files and the guard's directives: everything a locked-down broker needs to start."""
    credentials = await ensure_service_accounts(conn, directory)
    password_file, acl_file = await write_broker_files(conn, directory, prefix)
    write_private(directory / GUARD_CONF, "\n".join(guard_lines()) + "\n")
    return BrokerFiles(password_file, acl_file, credentials)


def find_broker_pid(conf_path: Path) -> int | None:
    """The pid of the Mosquitto started with ``-c conf_path`` (the embedded one), or None."""
    import psutil

    wanted = str(conf_path.resolve())
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if len(cmdline) >= 3 and Path(cmdline[0]).name == "mosquitto" and cmdline[1:3] == ["-c", wanted]:
            return int(proc.pid)
    return None


def reload_broker(conf_path: Path) -> bool:
    """SIGHUP the embedded broker so it re-reads its files (it drops clients whose account is gone)."""
    pid = find_broker_pid(conf_path)
    if pid is None:
        return False
    os.kill(pid, signal.SIGHUP)
    return True

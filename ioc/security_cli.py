"""``ioc users ...`` and ``ioc devices provision|revoke|credentials-file``: people and broker accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from ioc import accounts, provisioning
from ioc.db import run_on_connection
from ioc.settings import Settings

T = TypeVar("T")
SOURCE = "cli"


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def broker_dir(settings: Settings) -> Path:
    """Where the embedded broker keeps its configuration, password and ACL files."""
    return settings.state_dir.resolve() / "mosquitto"


def _run(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return run_on_connection(settings.resolved_database_url(), work)


def _password(args: argparse.Namespace) -> str | None:
    """The password from stdin with --password-stdin (one line), else None (one is generated)."""
    if not args.password_stdin:
        return None
    return sys.stdin.readline().rstrip("\r\n")


def _users_add(args: argparse.Namespace, settings: Settings) -> int:
    password = _password(args)

    def add(conn: asyncpg.Connection) -> Awaitable[str]:
        return accounts.create_user(
            conn, args.name, args.role, password, actor=_actor(), source=SOURCE, display=args.display
        )

    secret = _run(settings, add)
    if password is None:
        print(f"added {args.role} {args.name}; one-time password (must be changed at first login):\n{secret}")
    else:
        print(f"added {args.role} {args.name}")
    return 0


def _users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = _password(args)
    secret = _run(settings, lambda c: accounts.set_password(c, args.name, password, actor=_actor(), source=SOURCE))
    if password is None:
        print(f"new one-time password for {args.name} (must be changed at next login):\n{secret}")
    else:
        print(f"password of {args.name} changed; their sessions have ended")
    return 0


def _users_disable(args: argparse.Namespace, settings: Settings) -> int:
    _run(settings, lambda c: accounts.set_disabled(c, args.name, not args.enable, actor=_actor(), source=SOURCE))
    print(f"{args.name} {'enabled' if args.enable else 'disabled; their sessions have ended'}")
    return 0


def _users_list(args: argparse.Namespace, settings: Settings) -> int:
    for user in _run(settings, accounts.list_users):
        pairs = (("disabled", user.disabled), ("must-change", user.must_change), ("display", user.display))
        flags = ",".join(f for f, on in pairs if on)
        print(f"{user.name}\t{user.role}\t{flags}")
    return 0


async def _refresh_broker(conn: asyncpg.Connection, directory: Path, reload: bool) -> bool:
    """Rewrite the broker's files; True when the embedded broker was told to reload them."""
    await provisioning.write_broker_files(conn, directory)
    return reload and provisioning.reload_broker(directory / "mosquitto.conf")


def _report_reload(directory: Path, reloaded: bool) -> None:
    if reloaded:
        print(f"broker files in {directory} rewritten; the embedded broker reloaded them")
    else:
        print(
            f"broker files in {directory} rewritten; no embedded broker found there: reload yours "
            "(SIGHUP, e.g. 'docker compose kill -s HUP mosquitto')"
        )


def _devices_provision(args: argparse.Namespace, settings: Settings) -> int:
    directory = args.dir or broker_dir(settings)

    async def work(conn: asyncpg.Connection) -> tuple[str, list[str], bool]:
        secret = await provisioning.provision_device(conn, args.device_id, actor=_actor(), source=SOURCE)
        row = await conn.fetchrow("SELECT kind, format FROM devices WHERE device_id = $1", args.device_id)
        topics = provisioning.device_topics(args.device_id, row["kind"], row["format"], settings.topic_prefix)
        reloaded = await _refresh_broker(conn, directory, not args.no_reload)
        return secret, topics, reloaded

    secret, topics, reloaded = _run(settings, work)
    print(
        f"device {args.device_id}: MQTT user name {args.device_id}\n"
        f"secret (shown once; store it on the device now):\n{secret}\n"
        f"may publish to: {', '.join(topics)}"
    )
    _report_reload(directory, reloaded)
    return 0


def _devices_revoke(args: argparse.Namespace, settings: Settings) -> int:
    directory = args.dir or broker_dir(settings)

    async def work(conn: asyncpg.Connection) -> tuple[bool, bool]:
        found = await provisioning.revoke_device(conn, args.device_id, actor=_actor(), source=SOURCE)
        return found, await _refresh_broker(conn, directory, not args.no_reload)

    found, reloaded = _run(settings, work)
    print(f"device {args.device_id} revoked" if found else f"device {args.device_id} had no live credentials")
    _report_reload(directory, reloaded)
    return 0 if found else 1


def _devices_credentials_file(args: argparse.Namespace, settings: Settings) -> int:
    directory = args.dir or broker_dir(settings)

    async def work(conn: asyncpg.Connection) -> tuple[provisioning.BrokerFiles, bool]:
        files = await provisioning.prepare_broker(conn, directory, settings.topic_prefix)
        return files, not args.no_reload and provisioning.reload_broker(directory / "mosquitto.conf")

    files, reloaded = _run(settings, work)
    print(
        f"password_file {files.password_file}\nacl_file {files.acl_file}\n"
        f"include_dir {directory / provisioning.GUARD_CONF.parent}  (the ioc_guard plugin; needs ioc's broker build)\n"
        f"service secrets in {directory / provisioning.SECRETS_DIR} (mode 0600)"
    )
    _report_reload(directory, reloaded)
    return 0


def _subcommands(parser: argparse.ArgumentParser) -> Any:
    """The sub-command action of ``parser`` (argparse offers no public way to reach it)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{parser.prog.split()[-1]}_command", required=True)


def _password_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin instead of generating a one-time one",
    )


def add_parsers(subparsers: Any) -> None:
    """Add ``users add|passwd|disable|list`` and ``devices provision|revoke|credentials-file``."""
    users = subparsers.add_parser("users", help="manage the people who can log in")
    usub = users.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", help="add a user (prints a one-time password)")
    add.add_argument("name")
    add.add_argument("--role", choices=accounts.ROLES, required=True)
    add.add_argument(
        "--display",
        action="store_true",
        help="a wall display account (viewer only): its sessions last IOC_SESSION_DISPLAY_DAYS, not a shift",
    )
    _password_flag(add)
    add.set_defaults(func=_users_add)
    passwd = usub.add_parser("passwd", help="set a user's password (prints a one-time one); ends their sessions")
    passwd.add_argument("name")
    _password_flag(passwd)
    passwd.set_defaults(func=_users_passwd)
    disable = usub.add_parser("disable", help="disable a user and end their sessions")
    disable.add_argument("name")
    disable.add_argument("--enable", action="store_true", help="enable the user again instead")
    disable.set_defaults(func=_users_disable)
    usub.add_parser("list", help="list users").set_defaults(func=_users_list)

    devices = subparsers.choices.get("devices") or subparsers.add_parser("devices", help="manage the device registry")
    dsub = _subcommands(devices)
    where = {
        "type": Path,
        "default": None,
        "help": "directory of the broker's password and ACL files (default: the embedded broker's)",
    }
    no_reload = {"action": "store_true", "help": "do not signal the embedded broker"}
    prov = dsub.add_parser("provision", help="create or rotate a device's MQTT credentials (secret shown once)")
    prov.add_argument("device_id")
    prov.add_argument("--dir", **where)
    prov.add_argument("--no-reload", **no_reload)
    prov.set_defaults(func=_devices_provision)
    rev = dsub.add_parser("revoke", help="revoke a device's MQTT credentials and cut it off")
    rev.add_argument("device_id")
    rev.add_argument("--dir", **where)
    rev.add_argument("--no-reload", **no_reload)
    rev.set_defaults(func=_devices_revoke)
    cred = dsub.add_parser("credentials-file", help="write the broker's password and ACL files (and service accounts)")
    cred.add_argument("--dir", **where)
    cred.add_argument("--no-reload", **no_reload)
    cred.set_defaults(func=_devices_credentials_file)

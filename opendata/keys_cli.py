"""``ioc apikeys add|list|revoke``: the open data API keys of businesses (the owner role writes them)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from ioc.cli import positive_int
from ioc.db import run_on_connection
from ioc.settings import Settings
from opendata.keys import HEADER, add_key, list_keys, revoke_key

T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sub-commands of ``ioc apikeys``."""
    sub = parser.add_subparsers(dest="apikeys_command", required=True)
    add = sub.add_parser("add", help="create a key for a business; it is printed once")
    add.add_argument("name", help="who the key is for (shown in `ioc apikeys list`)")
    add.add_argument("--per-minute", type=positive_int, help="requests a minute (default IOC_OPEN_KEY_RATE_PER_MINUTE)")
    add.add_argument("--rows-per-day", type=positive_int, help="rows a UTC day (default IOC_OPEN_KEY_ROWS_PER_DAY)")
    sub.add_parser("list", help="keys with their quotas and today's use")
    revoke = sub.add_parser("revoke", help="stop a key (within seconds on every server)")
    revoke.add_argument("id", help="the key's id (the part after ioc_, as `list` shows it)")


def _run(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return run_on_connection(settings.resolved_database_url(), work)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``ioc apikeys ...``; returns the exit code."""
    if args.apikeys_command == "add":
        per_minute = args.per_minute or settings.open_key_rate_per_minute  # None: the default (0 is refused above)
        daily = args.rows_per_day or settings.open_key_rows_per_day
        if not args.name.strip():
            print("ioc apikeys: the key needs a name (who it is for)", file=sys.stderr)
            return 2
        actor = f"cli:{getpass.getuser()}"
        key = _run(settings, lambda c: add_key(c, args.name.strip(), per_minute, daily, actor))
        print(f"added a key for {args.name} ({per_minute} requests/min, {daily:,} rows/day); send it as the "
              f"{HEADER} header. It is shown only now:\n{key}")  # fmt: skip
        return 0
    if args.apikeys_command == "revoke":
        if not _run(settings, lambda c: revoke_key(c, args.id)):
            print(f"ioc apikeys: no active key {args.id!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}")
        return 0
    keys: list[Any] = _run(settings, list_keys)
    print("id\tname\tper_minute\trows_per_day\tcreated_at\trevoked_at\trequests_today\trows_today")
    for r in keys:
        print("\t".join("" if v is None else str(v) for v in r.values()))
    return 0

"""``ioc opendata bulk``: write the open data's missing daily bulk files (and drop the expired ones)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path

from ioc.errors import ConfigError
from ioc.kinds import load_kinds
from ioc.settings import Settings
from opendata.api import make_engine, read_url
from opendata.bulk import build
from opendata.config import load_config
from opendata.mqtt import PUBLISHER, write_broker_files

BULK_TIMEOUT_MS = 600_000  # one day of one kind is read by one statement: far above the API's time-out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sub-commands of ``ioc opendata``."""
    sub = parser.add_subparsers(dest="opendata_command", required=True)
    bulk = sub.add_parser("bulk", help="write the missing daily files (CSV, Parquet, GeoJSON) and the manifest")
    bulk.add_argument("--dir", type=Path, default=None, help="folder (default IOC_OPEN_BULK_DIR, else STATE/open-data)")
    bulk.add_argument("--days", type=int, default=None, help="complete days to keep (default IOC_OPEN_BULK_DAYS)")
    bulk.add_argument("--today", type=date.fromisoformat, default=None, help="as if today (UTC) were this date")
    files = sub.add_parser("broker-files", help="write the public MQTT broker's password and ACL files")
    files.add_argument("--dir", type=Path, required=True, help="folder (compose: the broker's /mosquitto/public)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``ioc opendata ...``; returns the exit code."""
    if args.opendata_command == "broker-files":
        write_broker_files(args.dir)
        print(f"{args.dir}: passwd, acl and the publisher's secret ({PUBLISHER}) for the public broker")
        return 0
    kinds = load_kinds(settings.kinds_file)
    try:
        config = load_config(settings.open_data_file, kinds)
    except ConfigError as exc:
        print(f"ioc opendata: {exc}", file=sys.stderr)
        return 2
    folder = args.dir or settings.bulk_dir
    days = args.days or settings.open_bulk_days
    bulk_settings = settings.model_copy(update={"open_statement_timeout_ms": BULK_TIMEOUT_MS, "open_pool_size": 1})

    async def go() -> dict[str, object]:
        engine = make_engine(read_url(settings), bulk_settings)
        try:
            async with engine.connect() as conn:
                return await build(conn, config, kinds, folder, days, args.today)
        finally:
            await engine.dispose()

    manifest = asyncio.run(go())
    files = manifest["files"]
    assert isinstance(files, list)
    rows = sum(f["rows"] for f in files if f["format"] == "csv")
    print(f"{folder}: {len(files)} files, {rows:,} observation rows, policy {manifest['policy']}")
    return 0

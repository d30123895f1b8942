"""The ``ioc`` command: one entry point for the stack, the services and administration."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from ioc.cluster import embedded_database_url
from ioc.errors import IocError
from ioc.logs import setup_logging
from ioc.settings import Settings

# Services live in their own packages; each exposes add_arguments(parser) and run(args, settings) -> int.
SERVICES = {
    "ingest": ("ingest.service", "consume MQTT and store normalised rows in TimescaleDB"),
    "serve": ("dashboards.server", "run the REST/websocket API and the dashboards"),
    "simulate": ("simulators.cli", "simulate the city's field devices (or a steady load)"),
    "forecast": ("forecast.cli", "train, run and backtest the flood, traffic and tide forecasts"),
    "opendata": ("opendata.cli", "write the open data's daily bulk files"),
    "apikeys": ("opendata.keys_cli", "add, list and revoke the open data API keys of businesses"),
    "open": ("opendata.server", "serve only the open data (/sta/v1.1, /open/...) at a lower CPU priority"),
}
# The database role (ioc/grants.py) each command uses on the embedded cluster; the others administer
# (migrations, people, devices) as the owner. None: the command finds its own database, or needs none.
COMMAND_ROLES: dict[str, str | None] = {
    "up": None, "simulate": None, "ingest": "ingest", "serve": "serve", "open": "serve", "prune": None
}  # fmt: skip


def positive_int(text: str) -> int:
    """An argparse type for the commands' counts and sizes: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        k: v
        for k, v in {
            "state_dir": getattr(args, "state_dir", None),
            "http_port": getattr(args, "http_port", None),
            "mqtt_port": getattr(args, "mqtt_port", None),
            "db_port": getattr(args, "db_port", None),
        }.items()
        if v is not None
    }
    settings = Settings(**overrides)
    role = COMMAND_ROLES.get(args.command, "owner")
    if role and not settings.database_url:
        # Beside a running `ioc up`: its cluster's credentials are in the state folder.
        url = embedded_database_url(settings.state_dir, role, settings.db_port)
        if url:
            settings = settings.model_copy(update={"database_url": url})
    return settings


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.up import run_up

    return run_up(
        settings,
        reset=args.reset,
        simulators=not args.no_simulators,
        speed=args.speed,
        seed=args.seed,
        scenario=args.scenario,
    )


def _cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.cluster import CLUSTERS_DIR, orphaned_clusters, prune_clusters

    orphans = orphaned_clusters() if args.dry_run else prune_clusters()
    verb = "would remove" if args.dry_run else "removed"
    for orphan in orphans:
        print(f"{verb} {orphan.path} ({orphan.size_bytes / 1e6:,.0f} MB): its state folder {orphan.owner} is gone")
    total = sum(o.size_bytes for o in orphans) / 1e9
    print(f"{verb} {len(orphans)} orphaned database clusters under {CLUSTERS_DIR} ({total:.1f} GB)")
    return 0


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.db import describe, migrate

    url = settings.resolved_database_url()
    migrate(url, args.revision)
    print(f"migrated {describe(url)} to {args.revision}")
    return 0


def _cmd_devices_import(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.db import create_pool
    from ioc.fleet import load_fleet
    from ioc.kinds import load_kinds
    from ioc.registry import import_fleet

    fleet = load_fleet(Path(args.file), load_kinds(settings.kinds_file))

    async def go() -> tuple[int, int]:
        pool = await create_pool(settings.resolved_database_url(), max_size=1)
        try:
            async with pool.acquire() as conn:
                return await import_fleet(conn, fleet)
        finally:
            await pool.close()

    zones, devices = asyncio.run(go())
    print(f"imported {zones} zones and {devices} devices from {args.file}")
    return 0


def _cmd_devices_list(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.db import create_pool

    async def go() -> list[tuple[str, ...]]:
        pool = await create_pool(settings.resolved_database_url(), max_size=1)
        try:
            rows = await pool.fetch(
                "SELECT device_id, kind, format, zone, status, last_seen FROM devices "
                "WHERE ($1::text IS NULL OR kind = $1) ORDER BY device_id",
                args.kind,
            )
        finally:
            await pool.close()
        return [tuple("" if v is None else str(v) for v in r.values()) for r in rows]

    for row in asyncio.run(go()):
        print("\t".join(row))
    return 0


def _service(module: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[..., int]]:
    mod = importlib.import_module(module)
    return mod.add_arguments, mod.run


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``ioc`` sub-command."""
    parser = argparse.ArgumentParser(prog="ioc", description="Intelligent Operations Centre")
    state_help = "state folder of the embedded stack (default IOC_STATE_DIR, else .ioc)"
    parser.add_argument("--state-dir", type=Path, help=state_help)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole embedded stack (database, broker, ingest, server, simulators)")
    up.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=state_help)
    up.add_argument("--http-port", type=int, help="dashboard/API port (default 8000)")
    up.add_argument("--mqtt-port", type=int, help="MQTT port (default 1883)")
    up.add_argument("--db-port", type=int, help="PostgreSQL port (default 55432)")
    up.add_argument("--reset", action="store_true", help="delete the state folder's data and start from empty")
    up.add_argument("--no-simulators", action="store_true", help="leave the broker quiet for real devices")
    up.add_argument("--speed", type=float, default=60.0, help="simulated time runs N times faster (default 60)")
    up.add_argument("--seed", type=int, default=None, help="simulator seed")
    up.add_argument("--scenario", default=None, help="simulator scenario (storm, rush-hour, incident, quiet)")
    up.set_defaults(func=_cmd_up)

    prune = sub.add_parser(
        "prune", help="delete the database clusters under /var/lib/ioc whose state folder was removed (ioc up does too)"
    )
    prune.add_argument("--dry-run", action="store_true", help="only list them")
    prune.set_defaults(func=_cmd_prune)

    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("--revision", default="head")
    mig.set_defaults(func=_cmd_migrate)

    dev = sub.add_parser("devices", help="manage the device registry")
    dsub = dev.add_subparsers(dest="devices_command", required=True)
    imp = dsub.add_parser("import", help="import zones and devices from YAML, CSV or GeoJSON")
    imp.add_argument("file")
    imp.set_defaults(func=_cmd_devices_import)
    lst = dsub.add_parser("list", help="list devices")
    lst.add_argument("--kind")
    lst.set_defaults(func=_cmd_devices_list)

    from ioc import security_cli

    security_cli.add_parsers(sub)  # ioc users ..., ioc devices provision|revoke|credentials-file

    for name, (module, help_text) in SERVICES.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(service_module=module)
        try:
            add_arguments, _ = _service(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == module.split(".")[0]:
                continue
            raise
        add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ioc`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"ioc: invalid setting IOC_{str(first['loc'][0]).upper()}: {first['msg']}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format, service=args.command)
    try:
        if hasattr(args, "service_module"):
            _, run = _service(args.service_module)
            return run(args, settings)
        return int(args.func(args, settings))
    except IocError as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

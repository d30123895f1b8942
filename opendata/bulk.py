"""Daily bulk files of the open data: per public kind and UTC day, the observations as gzip CSV and Parquet and
the devices' locations as GeoJSON, with a manifest (sizes, rows, SHA-256).

Rows come from the same policy-limited views as the SensorThings API (``opendata.entities``): a withheld device,
a metric or kind the policy does not publish, or a camera's raw counts never reach a file. The manifest records
a fingerprint of the policy; when the policy changes, every file is deleted and written again under the new one,
and the server serves no file written under another policy.

``ioc opendata bulk`` writes the missing days (``opendata/cli.py``); in ``ioc serve`` one leader across servers
runs it every ``IOC_OPEN_BULK_EVERY_S`` (``opendata/bulk_job.py``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Float, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from ioc.kinds import KindSpec
from ioc.tables import measurements, rollups_1m
from opendata.config import OpenDataConfig
from opendata.entities import public_devices, public_streams
from opendata.observations import hour_statistic

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BATCH = 50_000
# The observation files' columns, in order (documented in docs/open-data.md and the manifest).
COLUMNS = {
    "time": "UTC time of the reading (ISO 8601); for hourly data the start of the hour",
    "device_id": "the device (SensorThings Thing id)",
    "datastream_id": "the SensorThings Datastream id (device:metric)",
    "metric": "what was measured (ioc/kinds.yaml)",
    "value": "the reading, or the hour's statistic (the dataset's resolution)",
    "unit": "unit of the value",
}
FORMATS = {"csv": ("csv.gz", "text/csv"), "parquet": ("parquet", "application/vnd.apache.parquet"),
           "geojson": ("geojson", "application/geo+json")}  # fmt: skip


@dataclass(frozen=True)
class BulkFile:
    """One written file as the manifest lists it."""

    path: str  # relative to the bulk folder: "flood/flood-2026-11-26.csv.gz"
    kind: str
    day: str
    format: str
    media_type: str
    bytes: int
    rows: int
    sha256: str


def fingerprint(config: OpenDataConfig) -> str:
    """A digest of everything in the policy that decides what a file may contain."""
    doc = config.model_dump(mode="json", exclude={"catalogue"})
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def lock_key(folder: Path, purpose: str) -> int:
    """A PostgreSQL advisory lock id for ``purpose`` ("leader", "write") on ``folder``: servers sharing a folder
    share its locks; servers with folders of their own do not wait for each other."""
    digest = hashlib.sha256(f"ioc-open-bulk:{purpose}:{folder.resolve()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest in ``folder`` (an empty one when there is none or it cannot be read)."""
    try:
        return dict(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {"files": []}


def observations(config: OpenDataConfig, kinds: dict[str, KindSpec], kind: str, day: date) -> Select[Any]:
    """The public observations of ``kind`` on ``day`` (UTC) at the policy's resolution, ordered."""
    dev = public_devices(config)
    met = public_streams(config, kinds)
    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1)
    policy = config.kinds[kind]
    if policy.resolution == "raw":
        m = measurements
        return (
            select(m.c.time, m.c.device_id, m.c.metric, m.c.value, met.c.unit)
            .select_from(
                m.join(dev, dev.c.device_id == m.c.device_id).join(
                    met, and_(met.c.kind == dev.c.kind, met.c.metric == m.c.metric, met.c.stream == m.c.metric)
                )
            )
            .where(dev.c.kind == kind, m.c.part == "", m.c.time >= start, m.c.time < end)
            .order_by(m.c.device_id, m.c.metric, m.c.time)
        )
    r = rollups_1m
    hour = func.date_trunc("hour", r.c.bucket)
    totals = select(
        hour.label("time"),
        r.c.device_id,
        r.c.metric,
        met.c.unit,
        met.c.statistic,
        func.sum(r.c.sum).label("sum"),
        func.sum(r.c.count).label("count"),
        func.min(r.c.min).label("min"),
        func.max(r.c.max).label("max"),
    ).select_from(
        r.join(dev, dev.c.device_id == r.c.device_id).join(
            met, and_(met.c.kind == dev.c.kind, met.c.metric == r.c.metric, met.c.stream == r.c.metric)
        )
    )
    per_hour = (
        totals.where(
            dev.c.kind == kind,
            r.c.part == "",
            r.c.bucket >= start,
            r.c.bucket < end,
            r.c.bucket < func.date_trunc("hour", func.now()),
        )  # fmt: skip
        .group_by(hour, r.c.device_id, r.c.metric, met.c.unit, met.c.statistic)
        .subquery("per_hour")
    )
    return select(
        per_hour.c.time,
        per_hour.c.device_id,
        per_hour.c.metric,
        cast(hour_statistic(per_hour.c.statistic, per_hour.c), Float).label("value"),
        per_hour.c.unit,
    ).order_by(per_hour.c.device_id, per_hour.c.metric, per_hour.c.time)


def locations(config: OpenDataConfig, kind: str) -> Select[Any]:
    """The public devices of ``kind`` with their published (rounded) coordinates."""
    dev = public_devices(config)
    return (
        select(dev.c.device_id, dev.c.name, dev.c.zone, dev.c.lon, dev.c.lat)
        .where(dev.c.kind == kind, dev.c.lat.is_not(None))
        .order_by(dev.c.device_id)
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _write_observations(conn: AsyncConnection, stmt: Select[Any], csv_path: Path, parquet_path: Path) -> int:
    """Stream ``stmt``'s rows into a gzip CSV and a Parquet file; returns the row count."""
    import pyarrow as pa  # the server never imports pyarrow: only this command (a child process) does
    import pyarrow.parquet as pq

    schema = pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("device_id", pa.string()),
                        ("datastream_id", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
                        ("unit", pa.string())])  # fmt: skip
    rows = 0
    # mtime=0: the same rows give the same bytes (and SHA-256) whenever they are written.
    with gzip.GzipFile(csv_path, "wb", mtime=0) as gz, pq.ParquetWriter(parquet_path, schema) as parquet:
        text = _TextSink(gz)
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        result = await conn.stream(stmt)
        async for batch in result.partitions(BATCH):
            columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
            for at, device, metric, value, unit in batch:
                stream = f"{device}:{metric}"
                writer.writerow((_iso(at), device, stream, metric, repr(float(value)), unit))
                for name, item in zip(COLUMNS, (at, device, stream, metric, float(value), unit), strict=True):
                    columns[name].append(item)
            text.flush()
            parquet.write_table(pa.table(columns, schema=schema))
            rows += len(batch)
    return rows


class _TextSink:
    """Buffers csv's text and hands it to a binary stream as UTF-8 in large writes."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        self.raw.write("".join(self.parts).encode())
        self.parts.clear()


async def _write_locations(conn: AsyncConnection, stmt: Select[Any], path: Path) -> int:
    rows = (await conn.execute(stmt)).all()
    features = [
        {"type": "Feature", "id": device, "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"name": name, "zone": zone}}
        for device, name, zone, lon, lat in rows
    ]  # fmt: skip
    body = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False) + "\n"
    path.write_text(body)  # noqa: ASYNC240 (a child process of its own: blocking file writes stall nobody)
    return len(rows)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def due_days(today: date, keep: int) -> list[date]:
    """The complete UTC days the folder should hold: the ``keep`` days before ``today``, oldest first."""
    return [today - timedelta(days=n) for n in range(keep, 0, -1)]


async def write_day(
    conn: AsyncConnection, config: OpenDataConfig, kinds: dict[str, KindSpec], folder: Path, kind: str, day: date
) -> list[BulkFile]:
    """Write one kind's files for ``day`` (under temporary names, then renamed) and describe them."""
    (folder / kind).mkdir(parents=True, exist_ok=True)
    stem = f"{kind}/{kind}-{day.isoformat()}"
    tmp = {fmt: folder / f"{stem}.{ext}.part" for fmt, (ext, _) in FORMATS.items()}
    counts = {"geojson": await _write_locations(conn, locations(config, kind), tmp["geojson"])}
    counts["csv"] = counts["parquet"] = await _write_observations(
        conn, observations(config, kinds, kind, day), tmp["csv"], tmp["parquet"]
    )
    out = []
    for fmt, (ext, media) in FORMATS.items():
        final = folder / f"{stem}.{ext}"
        os.replace(tmp[fmt], final)
        out.append(BulkFile(f"{stem}.{ext}", kind, day.isoformat(), fmt, media, final.stat().st_size, counts[fmt],
                            _digest(final)))  # fmt: skip
    return out


async def build(
    conn: AsyncConnection,
    config: OpenDataConfig,
    kinds: dict[str, KindSpec],
    folder: Path,
    keep_days: int,
    today: date | None = None,
) -> dict[str, Any]:
    """Bring ``folder`` up to date: the missing days written, days past ``keep_days`` deleted, everything
    rewritten after a policy change; returns the new manifest (also written to the folder)."""
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (as above)
    # One writer per folder at a time (the job's child, or someone's `ioc opendata bulk`); released with the
    # transaction, when the connection is returned.
    await conn.execute(select(func.pg_advisory_xact_lock(lock_key(folder, "write"))))
    today = today or datetime.now(UTC).date()
    policy = fingerprint(config)
    manifest = read_manifest(folder)
    files = [BulkFile(**f) for f in manifest.get("files", [])]
    if manifest.get("policy") != policy:
        if files:
            logger.info("open data bulk: the policy changed, rewriting %d files", len(files))
        files = []
    wanted = {d.isoformat() for d in due_days(today, keep_days)}
    keep = [f for f in files if f.day in wanted and f.kind in config.kinds and (folder / f.path).is_file()]
    have = {(f.kind, f.day) for f in keep}
    for day in sorted(wanted):
        for kind in config.kinds:
            if (kind, day) not in have:
                written = await write_day(conn, config, kinds, folder, kind, date.fromisoformat(day))
                logger.info("open data bulk: %s %s: %d rows", kind, day, written[1].rows)
                keep += written
    keep.sort(key=lambda f: (f.kind, f.day, f.format))
    new = {
        "generated_at": _iso(datetime.now(UTC)),
        "policy": policy,
        "licence": config.licence,
        "columns": COLUMNS,
        "files": [f.__dict__ for f in keep],
    }
    tmp = folder / f"{MANIFEST}.part"
    tmp.write_text(json.dumps(new, indent=1) + "\n")
    os.replace(tmp, folder / MANIFEST)
    listed = {f.path for f in keep} | {MANIFEST}
    for stale in _files(folder):
        if stale not in listed:
            (folder / stale).unlink(missing_ok=True)
    return new


def _files(folder: Path) -> Iterator[str]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield str(path.relative_to(folder))

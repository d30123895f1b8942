"""The open data's public files under ``/open``: the DCAT-AP catalogue, the bulk files and their manifest, and the
datasets summary the ``/open`` page shows (the page itself is one of the dashboards' pages)."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ioc.kinds import KindSpec
from ioc.tables import latest_values, measurements
from opendata.bulk import COLUMNS, fingerprint, read_manifest
from opendata.catalog import MEDIA_TYPES, Coverage, build_catalog, serialise
from opendata.config import LICENCES
from opendata.entities import public_devices

if TYPE_CHECKING:
    from opendata.api import OpenData

logger = logging.getLogger(__name__)

CATALOG_TTL_S = 300.0  # the catalogue is rebuilt at most this often (it reads the coverage from the database)
_BULK_NAME = re.compile(r"^[a-z][a-z0-9_]*-\d{4}-\d{2}-\d{2}\.(?:csv\.gz|parquet|geojson)\Z")
_SUFFIX = {"ttl": "turtle", "jsonld": "json-ld"}


async def coverage(state: OpenData) -> Coverage:
    """Each public kind's bounding box (published coordinates) and time span, from the public views."""
    assert state.engine is not None
    dev = public_devices(state.config)
    boxes = select(dev.c.kind, func.min(dev.c.lon), func.min(dev.c.lat), func.max(dev.c.lon), func.max(dev.c.lat))
    newest = (
        select(dev.c.kind, func.max(latest_values.c.time))
        .select_from(latest_values.join(dev, dev.c.device_id == latest_values.c.device_id))
        .group_by(dev.c.kind)
    )
    async with state.engine.connect() as conn:
        box_rows = (await conn.execute(boxes.where(dev.c.lat.is_not(None)).group_by(dev.c.kind))).all()
        ends: dict[str, datetime] = dict((await conn.execute(newest)).tuples().all())
        start = (await conn.execute(select(func.min(measurements.c.time)))).scalar()
    result = Coverage(boxes={k: (w, s, e, n) for k, w, s, e, n in box_rows})
    if start is not None:
        for kind in ends:
            result.start[kind] = start
            result.end[kind] = ends[kind]
    return result


def summary(state: OpenData, kinds: dict[str, KindSpec], base: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the /open page lists: datasets with their metrics and units, the API, the bulk files, the licence."""
    config, settings = state.config, state.settings
    datasets = []
    for kind, policy in config.kinds.items():
        spec = kinds[kind]
        datasets.append({
            "kind": kind,
            "label": spec.label or {"vi": kind, "en": kind},
            "resolution": policy.resolution,
            "statistic": policy.statistic if policy.resolution == "hour" else None,
            "hourly": list(policy.hourly) if policy.resolution == "raw" else [],
            "interval_s": spec.interval_s,
            "metrics": [{"id": m, "unit": spec.metrics[m].unit} for m in policy.metrics],
            "datastreams": f"{base}/sta/v1.1/Datastreams?$filter=properties/kind eq '{kind}'",
            "files": [f for f in manifest.get("files", []) if f["kind"] == kind],
        })  # fmt: skip
    return {
        "licence": {"id": config.licence, "url": LICENCES[config.licence]},
        "publisher": config.catalogue.publisher.model_dump(),
        "api": f"{base}/sta/v1.1",
        "catalog": {"turtle": f"{base}/open/catalog.ttl", "jsonld": f"{base}/open/catalog.jsonld"},
        "manifest": f"{base}/open/bulk/manifest.json",
        "columns": COLUMNS,
        "datasets": datasets,
        "limits": {
            "anonymous_per_minute": settings.open_rate_per_minute,
            "anonymous_burst": settings.open_rate_burst,
            "key_per_minute": settings.open_key_rate_per_minute,
            "key_rows_per_day": settings.open_key_rows_per_day,
            "timeout_s": settings.open_statement_timeout_ms / 1000,
        },
    }


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _current_manifest(state: OpenData) -> dict[str, Any]:
    """The manifest, or an empty one while the files on disk were written under another policy."""
    manifest = read_manifest(state.settings.bulk_dir)
    if manifest.get("policy") != fingerprint(state.config):
        return {"files": []}
    return manifest


def _file_urls(base: str, manifest: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """The manifest's file URLs by kind and format."""
    urls: dict[str, dict[str, list[str]]] = {}
    for f in manifest.get("files", []):
        urls.setdefault(f["kind"], {}).setdefault(f["format"], []).append(f"{base}/open/bulk/{f['path']}")
    return urls


def _catalogue_routes(router: APIRouter, state: OpenData, kinds: dict[str, KindSpec]) -> None:
    """``/open/catalog`` (by Accept or suffix, cached per format and base URL) and ``/open/datasets.json``."""
    cache: dict[tuple[str, str], tuple[float, bytes]] = {}

    async def catalog(request: Request, fmt: str) -> Response:
        if refused := await state.admit(request):
            return refused
        base = _base_url(request)
        key = (fmt, base)
        hit = cache.get(key)
        if hit is None or time.monotonic() - hit[0] > CATALOG_TTL_S:
            try:
                cover = await coverage(state)
            except (DBAPIError, PoolTimeout) as exc:
                logger.warning("open data catalogue: %s", exc)
                return JSONResponse({"code": 503, "type": "error", "message": "the catalogue's database is away"},
                                    status_code=503)  # fmt: skip
            graph = build_catalog(state.config, kinds, base, cover, _file_urls(base, _current_manifest(state)))
            hit = cache[key] = (time.monotonic(), serialise(graph, fmt))
        return Response(hit[1], media_type=MEDIA_TYPES[fmt], headers={"Cache-Control": "public, max-age=300"})

    @router.get("/catalog", summary="The DCAT-AP 3.0 catalogue: Turtle or JSON-LD by the Accept header")
    async def catalog_negotiated(request: Request) -> Response:
        """Turtle when the client prefers text/turtle, else JSON-LD."""
        accept = request.headers.get("accept", "")
        wants_turtle = "text/turtle" in accept and accept.find("text/turtle") < _first(accept, "application/ld+json")
        response = await catalog(request, "turtle" if wants_turtle else "json-ld")
        response.headers["Vary"] = "Accept"
        return response

    @router.get("/catalog.{suffix}", summary="The DCAT-AP 3.0 catalogue as .ttl (Turtle) or .jsonld (JSON-LD)")
    async def catalog_file(suffix: str, request: Request) -> Response:
        """The catalogue in the format its suffix names."""
        if suffix not in _SUFFIX:
            return JSONResponse({"code": 404, "type": "error", "message": "the catalogue is catalog.ttl or "
                                 "catalog.jsonld"}, status_code=404)  # fmt: skip
        return await catalog(request, _SUFFIX[suffix])

    @router.get("/datasets.json", summary="The datasets, API and bulk files the /open page lists")
    async def datasets(request: Request) -> Response:
        """The /open page's content as JSON."""
        if refused := await state.admit(request):
            return refused
        return JSONResponse(summary(state, kinds, _base_url(request), _current_manifest(state)))


def _bulk_routes(router: APIRouter, state: OpenData) -> None:
    """``/open/bulk/manifest.json`` and the daily files it lists."""
    folder: Path = state.settings.bulk_dir

    @router.get("/bulk/manifest.json", summary="The bulk files: path, size, rows and SHA-256 of each")
    async def manifest(request: Request) -> Response:
        """The manifest of the daily files (files written under another policy are not listed)."""
        if refused := await state.admit(request):
            return refused
        doc = _current_manifest(state)
        base = _base_url(request)
        for f in doc.get("files", []):
            f["url"] = f"{base}/open/bulk/{f['path']}"
        return JSONResponse(doc, headers={"Cache-Control": "no-cache"})

    @router.get("/bulk/{kind}/{name}", summary="One daily file (Range, ETag and Last-Modified supported)")
    async def bulk_file(kind: str, name: str, request: Request) -> Response:
        """A file the manifest lists; its ETag is its SHA-256."""
        if refused := await state.admit(request):
            return refused
        listed = {f["path"]: f for f in _current_manifest(state).get("files", [])} if _BULK_NAME.match(name) else {}
        entry = listed.get(f"{kind}/{name}")
        path = folder / kind / name
        if entry is None or not path.is_file():
            return JSONResponse({"code": 404, "type": "error", "message": f"no bulk file {kind}/{name} (see "
                                 "/open/bulk/manifest.json)"}, status_code=404)  # fmt: skip
        etag = f'"{entry["sha256"]}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            modified = formatdate(path.stat().st_mtime, usegmt=True)
            return Response(status_code=304, headers={**headers, "Last-Modified": modified})
        return FileResponse(path, media_type=entry["media_type"], headers=headers, filename=name)


def create_site(state: OpenData, kinds: dict[str, KindSpec]) -> APIRouter:
    """The ``/open/...`` routes (public, rate-limited like the API)."""
    router = APIRouter(prefix="/open", tags=["open data (catalogue and bulk files)"])
    _catalogue_routes(router, state, kinds)
    _bulk_routes(router, state)
    return router


def _first(text: str, needle: str) -> int:
    at = text.find(needle)
    return len(text) if at < 0 else at

"""Daily bulk files: written from the policy-limited views (nothing withheld in them), listed in a manifest with
sizes, rows and SHA-256, served with ETag, Last-Modified and Range, and rewritten when the policy changes; in
``ioc serve`` the leader writes them."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import yaml

from opendata.bulk import COLUMNS
from tests.opendata_fixtures import (  # noqa: F401 (fixtures)
    CAMERA,
    SECRET,
    SECRET_VALUE,
    THING,
    WITHHELD_VALUE,
    build_bulk,
    camera_means,
    open_data_fixture,
    policy_file,
    start_server,
)
from tests.support.stack import until


@pytest.fixture(scope="module")
def bulk(app_env: dict[str, str], module_scratch_dir, open_data) -> Path:  # type: ignore[no-untyped-def]
    """A folder written by ``ioc opendata bulk`` with the test policy (SECRET withheld)."""
    folder = module_scratch_dir("ioc-od-bulk-")
    done = build_bulk(app_env, folder / "bulk", policy_file(folder))
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def server(run_ioc, bulk: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server serving that folder (without the bulk job, which would write its own days into it)."""
    yield from start_server(run_ioc, bulk)


def manifest(bulk: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((bulk / "bulk" / "manifest.json").read_text())


def csv_rows(bulk: Path, kind: str) -> list[dict[str, str]]:
    """Every row of ``kind``'s CSV files."""
    rows: list[dict[str, str]] = []
    for entry in manifest(bulk)["files"]:
        if entry["kind"] == kind and entry["format"] == "csv":
            with gzip.open(bulk / "bulk" / entry["path"], "rt") as f:
                rows += list(csv.DictReader(f))
    return rows


def test_manifest_describes_every_file_truly(bulk: Path) -> None:
    doc = manifest(bulk)
    assert doc["columns"] == COLUMNS and doc["licence"] == "CC-BY-4.0"
    kinds = {(f["kind"], f["format"]) for f in doc["files"]}
    assert kinds == {(k, f) for k in ("flood", "traffic", "camera") for f in ("csv", "parquet", "geojson")}
    for entry in doc["files"]:
        data = (bulk / "bulk" / entry["path"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        if entry["format"] == "csv":
            assert entry["rows"] == len(gzip.decompress(data).decode().splitlines()) - 1
        elif entry["format"] == "parquet":
            assert entry["rows"] == pq.read_table(io.BytesIO(data)).num_rows
        else:
            assert entry["rows"] == len(json.loads(data)["features"])


def test_files_hold_the_public_readings_and_nothing_withheld(bulk: Path) -> None:
    flood = csv_rows(bulk, "flood")
    ours = [(r["datastream_id"], float(r["value"])) for r in flood if r["device_id"] == THING]
    assert sorted(ours) == sorted([(f"{THING}:water_level_cm", 10.0), (f"{THING}:water_level_cm", 12.5),
                                   (f"{THING}:rainfall_mm_h", 0.0), (f"{THING}:rainfall_mm_h", 3.0)])  # fmt: skip
    assert list(flood[0]) == list(COLUMNS) and flood[0]["time"].endswith("Z")
    camera = [float(r["value"]) for r in csv_rows(bulk, "camera") if r["device_id"] == CAMERA]
    assert camera == pytest.approx(camera_means())  # hourly means only, never the 120 raw counts
    everything = b""
    for entry in manifest(bulk)["files"]:
        data = (bulk / "bulk" / entry["path"]).read_bytes()
        everything += gzip.decompress(data) if entry["format"] == "csv" else data
        if entry["format"] == "parquet":
            table = pq.read_table(bulk / "bulk" / entry["path"]).to_pydict()
            assert SECRET not in table["device_id"] and "battery_pct" not in table["metric"]
            assert SECRET_VALUE not in table["value"] and WITHHELD_VALUE not in table["value"]
    assert SECRET.encode() not in everything and b"battery_pct" not in everything
    assert str(SECRET_VALUE).encode() not in everything and str(WITHHELD_VALUE).encode() not in everything


def test_locations_are_rounded_geojson(bulk: Path) -> None:
    entry = next(f for f in manifest(bulk)["files"] if f["kind"] == "flood" and f["format"] == "geojson")
    features = {f["id"]: f for f in json.loads((bulk / "bulk" / entry["path"]).read_text())["features"]}
    assert features[THING]["geometry"] == {"type": "Point", "coordinates": [106.6981, 10.7723]}  # 4 places
    assert SECRET not in features


async def test_served_with_etag_last_modified_and_ranges(server: str, bulk: Path) -> None:
    entry = next(f for f in manifest(bulk)["files"] if f["format"] == "parquet")
    url = f"{server}/open/bulk/{entry['path']}"
    async with httpx.AsyncClient(timeout=30) as http:
        listed = (await http.get(f"{server}/open/bulk/manifest.json")).json()
        whole = await http.get(url)
        again = await http.get(url, headers={"If-None-Match": whole.headers["etag"]})
        part = await http.get(url, headers={"Range": "bytes=4-13"})
        stray_path = bulk / "bulk" / "flood" / "flood-2000-01-01.csv.gz"
        stray_path.write_bytes(b"not listed")
        stray = await http.get(f"{server}/open/bulk/flood/flood-2000-01-01.csv.gz")
        outside = await http.get(f"{server}/open/bulk/flood/..%2Fmanifest.json")
    assert listed["files"][0]["url"].startswith(f"{server}/open/bulk/")
    assert whole.status_code == 200 and whole.content == (bulk / "bulk" / entry["path"]).read_bytes()
    assert whole.headers["etag"] == f'"{entry["sha256"]}"' and whole.headers["last-modified"].endswith("GMT")
    assert whole.headers["content-type"] == "application/vnd.apache.parquet"
    assert whole.headers["accept-ranges"] == "bytes"
    assert again.status_code == 304 and again.content == b""
    assert part.status_code == 206 and part.content == whole.content[4:14]
    assert stray.status_code == 404 and outside.status_code == 404


async def test_a_policy_change_rewrites_every_file(app_env: dict[str, str], server: str, bulk: Path) -> None:
    """Withholding a device later must take its rows out of the files already written."""
    strict = bulk / "strict"
    strict.mkdir(exist_ok=True)
    doc = yaml.safe_load(policy_file(bulk).read_text())
    doc["withheld_devices"].append(THING)
    (strict / "open-data.yaml").write_text(yaml.safe_dump(doc))
    before = manifest(bulk)["policy"]
    # The running server (old policy) stops serving files written under the new one...
    done = build_bulk(app_env, bulk / "bulk", strict / "open-data.yaml")
    assert done.returncode == 0, done.stderr
    assert manifest(bulk)["policy"] != before
    assert THING not in {r["device_id"] for r in csv_rows(bulk, "flood")}
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{server}/open/bulk/manifest.json")).json()["files"] == []
    # ...and writing under its own policy again brings them back.
    assert build_bulk(app_env, bulk / "bulk", policy_file(bulk)).returncode == 0
    assert THING in {r["device_id"] for r in csv_rows(bulk, "flood")}


async def test_the_leader_in_serve_writes_the_files(run_ioc, module_scratch_dir, open_data) -> None:  # type: ignore[no-untyped-def]
    folder = module_scratch_dir("ioc-od-job-")
    for base in start_server(run_ioc, folder, IOC_OPEN_BULK_DAYS="2", IOC_OPEN_BULK_JOB="true"):
        target = folder / "bulk" / "manifest.json"
        await until(target.exists, timeout=60, what="the leader's manifest")
        doc = json.loads(target.read_text())
        assert len(doc["files"]) == 2 * 3 * 3  # 2 days x 3 kinds x (CSV, Parquet, GeoJSON)
        async with httpx.AsyncClient(timeout=30) as http:
            served = (await http.get(f"{base}/open/bulk/manifest.json")).json()
        assert len(served["files"]) == 18

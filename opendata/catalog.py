"""The DCAT-AP 3.0 catalogue of the open data (``/open/catalog.ttl``, ``.jsonld``), built with rdflib.

One ``dcat:Dataset`` per public kind (its metrics at the policy's resolution), each with distributions for the
SensorThings API (``dcat:accessService``) and the daily bulk files (CSV, Parquet, GeoJSON); the API is the
catalogue's ``dcat:DataService``. Coverage (the area's bounding box, the time span) comes from the public views,
so a withheld device never widens it. ``tests/opendata_shapes/dcat-ap-3.ttl`` holds the shapes it is checked
against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from ioc.kinds import KindSpec
from opendata.config import LICENCES, OpenDataConfig

VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
STA_SPEC = URIRef("http://www.opengis.net/doc/is/sensorthings/1.1")
DCAT_AP = URIRef("http://data.europa.eu/r5r/")
# The bulk files: format code (EU file-type vocabulary), media type, compression, title.
BULK = {
    "csv": ("CSV", "text/csv", "application/gzip", {"vi": "Tệp CSV hằng ngày (gzip)", "en": "Daily CSV files (gzip)"}),
    "parquet": ("PARQUET", "application/vnd.apache.parquet", None,
                {"vi": "Tệp Parquet hằng ngày", "en": "Daily Parquet files"}),
    "geojson": ("GEOJSON", "application/geo+json", None,
                {"vi": "Vị trí thiết bị (GeoJSON, hằng ngày)", "en": "Device locations (GeoJSON, daily)"}),
}  # fmt: skip
STATISTIC_VI = {"mean": "trung bình", "min": "nhỏ nhất", "max": "lớn nhất", "sum": "tổng"}
MEDIA_TYPES = {"turtle": "text/turtle", "json-ld": "application/ld+json"}


@dataclass(frozen=True)
class Coverage:
    """Where and when the public data lies: per kind a bounding box (lon/lat) and the time span."""

    boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)  # kind -> W, S, E, N
    start: dict[str, datetime] = field(default_factory=dict)
    end: dict[str, datetime] = field(default_factory=dict)


def _text(graph: Graph, subject: Any, predicate: URIRef, texts: Mapping[Any, str]) -> None:
    for lang, text in texts.items():
        graph.add((subject, predicate, Literal(text, lang=lang)))


def _box(west: float, south: float, east: float, north: float) -> Literal:
    ring = f"{west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}"
    return Literal(f"POLYGON(({ring}))", datatype=GSP.wktLiteral)


def _location(graph: Graph, node: URIRef, box: tuple[float, float, float, float], place: Mapping[Any, str]) -> URIRef:
    west, south, east, north = box
    graph.add((node, RDF.type, DCTERMS.Location))
    graph.add((node, DCAT.bbox, _box(west, south, east, north)))
    centre = f"POINT({round((west + east) / 2, 6)} {round((south + north) / 2, 6)})"
    graph.add((node, DCAT.centroid, Literal(centre, datatype=GSP.wktLiteral)))
    _text(graph, node, SKOS.prefLabel, place)
    return node


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float] | None:
    if not boxes:
        return None
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


@dataclass(frozen=True)
class _Parts:
    """What every section of the catalogue refers to: the graph, the shared nodes and the dates."""

    g: Graph
    base: str
    config: OpenDataConfig
    coverage: Coverage
    modified: datetime
    catalog: URIRef
    publisher: URIRef
    licence: URIRef
    contact: URIRef
    service: URIRef
    issued: Literal
    now: Literal


def _agents(p: _Parts) -> None:
    """The publisher, the licence document and the contact point."""
    g, info = p.g, p.config.catalogue
    g.add((p.publisher, RDF.type, FOAF.Agent))
    _text(g, p.publisher, FOAF.name, info.publisher.name)
    g.add((p.publisher, DCTERMS.type, URIRef("http://purl.org/adms/publishertype/LocalAuthority")))
    g.add((p.publisher, FOAF.homepage, URIRef(info.publisher.homepage)))

    g.add((p.licence, RDF.type, DCTERMS.LicenseDocument))
    g.add((p.licence, DCTERMS.type, URIRef("http://purl.org/adms/licencetype/Attribution")))
    g.add((p.licence, DCTERMS.identifier, Literal(p.config.licence)))

    g.add((p.contact, RDF.type, VCARD.Organization))
    g.add((p.contact, VCARD.fn, Literal(info.publisher.name.get("en") or next(iter(info.publisher.name.values())))))
    g.add((p.contact, VCARD.hasEmail, URIRef(f"mailto:{info.publisher.email}")))


def _catalog(p: _Parts) -> None:
    """The ``dcat:Catalog`` node, its whole area included."""
    g, info, catalog = p.g, p.config.catalogue, p.catalog
    g.add((catalog, RDF.type, DCAT.Catalog))
    _text(g, catalog, DCTERMS.title, info.title)
    _text(g, catalog, DCTERMS.description, info.description)
    g.add((catalog, DCTERMS.publisher, p.publisher))
    g.add((catalog, FOAF.homepage, URIRef(f"{p.base}/open")))
    g.add((catalog, DCTERMS.license, p.licence))
    g.add((catalog, DCTERMS.issued, p.issued))
    g.add((catalog, DCTERMS.modified, p.now))
    g.add((catalog, DCAT.themeTaxonomy, URIRef(f"{EU}data-theme")))
    g.add((catalog, DCTERMS.conformsTo, DCAT_AP))
    for code in ("VIE", "ENG"):
        g.add((catalog, DCTERMS.language, URIRef(f"{EU}language/{code}")))
    area = _union(list(p.coverage.boxes.values()))
    if area:
        g.add((catalog, DCTERMS.spatial, _location(g, URIRef(f"{p.base}/open/catalog#area"), area, info.place)))


def _service(p: _Parts) -> None:
    """The SensorThings API as the catalogue's ``dcat:DataService``."""
    g, service = p.g, p.service
    g.add((p.catalog, DCAT.service, service))
    g.add((service, RDF.type, DCAT.DataService))
    _text(g, service, DCTERMS.title, {"vi": "API SensorThings 1.1 (chỉ đọc)", "en": "SensorThings API 1.1 (read-only)"})
    _text(g, service, DCTERMS.description, {
        "vi": "Giao diện OGC SensorThings 1.1 chỉ đọc, công khai, không cần đăng nhập.",
        "en": "Public, read-only OGC SensorThings API 1.1; no login.",
    })  # fmt: skip
    g.add((service, DCAT.endpointURL, service))
    g.add((service, DCAT.endpointDescription, URIRef(f"{p.base}/open#api")))
    g.add((service, DCTERMS.conformsTo, STA_SPEC))
    g.add((service, DCTERMS.license, p.licence))
    g.add((service, DCTERMS.publisher, p.publisher))


def _dataset_text(p: _Parts, dataset: URIRef, kind: str, spec: KindSpec) -> None:
    """A dataset's title and description in both languages."""
    policy = p.config.kinds[kind]
    hourly = policy.resolution == "hour"
    label = spec.label or {"en": kind}
    what = (
        {"vi": STATISTIC_VI[policy.statistic] + " theo giờ", "en": f"hourly {policy.statistic}"}
        if hourly
        else {"vi": "số đo", "en": "readings"}
    )
    titles = {lang: f"{name}: {what[lang]}" for lang, name in label.items() if lang in what}
    _text(p.g, dataset, DCTERMS.title, titles)
    metrics = ", ".join(f"{m} ({spec.metrics[m].unit})" for m in policy.metrics)
    _text(p.g, dataset, DCTERMS.description, {
        "vi": f"{label.get('vi', kind)}: {metrics}; "
              + ("mỗi giờ một giá trị" if hourly else "mọi số đo, khoảng một phút một lần")
              + ", không gồm thiết bị được giữ kín.",
        "en": f"{label.get('en', kind)}: {metrics}; "
              + (f"one hourly {policy.statistic} per hour" if hourly else "every reading, about one a minute")
              + ", withheld devices excluded.",
    })  # fmt: skip


def _dataset_coverage(p: _Parts, dataset: URIRef, kind: str) -> None:
    """A dataset's area and time span, where the public views have any."""
    g, coverage = p.g, p.coverage
    if kind in coverage.boxes:
        node = URIRef(f"{p.base}/open/catalog#area-{kind}")
        g.add((dataset, DCTERMS.spatial, _location(g, node, coverage.boxes[kind], p.config.catalogue.place)))
    if kind in coverage.start:
        period = BNode(f"period-{kind}")
        g.add((dataset, DCTERMS.temporal, period))
        g.add((period, RDF.type, DCTERMS.PeriodOfTime))
        g.add((period, DCAT.startDate, Literal(_iso(coverage.start[kind]), datatype=XSD.dateTime)))
        g.add((period, DCAT.endDate, Literal(_iso(coverage.end.get(kind, p.modified)), datatype=XSD.dateTime)))


def _dataset_distributions(p: _Parts, dataset: URIRef, kind: str, files: dict[str, list[str]]) -> None:
    """A dataset's distributions: the API and each bulk format (``files``: format -> file URLs)."""
    g, base = p.g, p.base
    api = URIRef(f"{base}/open/catalog#api-{kind}")
    _distribution(g, dataset, api, p.licence, "JSON", "application/json", {
        "vi": "API SensorThings: Datastreams có properties/kind bằng " + kind,
        "en": f"SensorThings API: the Datastreams whose properties/kind is {kind}",
    })  # fmt: skip
    g.add((api, DCAT.accessURL, p.service))
    g.add((api, DCAT.accessService, p.service))
    g.add((api, DCTERMS.conformsTo, STA_SPEC))
    for fmt, (code, media, compress, title) in BULK.items():
        dist = URIRef(f"{base}/open/catalog#{fmt}-{kind}")
        _distribution(g, dataset, dist, p.licence, code, media, title)
        g.add((dist, DCAT.accessURL, URIRef(f"{base}/open/bulk/manifest.json")))
        if compress:
            g.add((dist, DCAT.compressFormat, URIRef(IANA + compress)))
        for url in files.get(fmt, []):
            g.add((dist, DCAT.downloadURL, URIRef(url)))


def _dataset(p: _Parts, kind: str, spec: KindSpec, files: dict[str, list[str]]) -> None:
    """The ``dcat:Dataset`` of one public kind."""
    g, policy = p.g, p.config.kinds[kind]
    dataset = URIRef(f"{p.base}/open/catalog#dataset-{kind}")
    g.add((p.catalog, DCAT.dataset, dataset))
    g.add((p.service, DCAT.servesDataset, dataset))
    g.add((dataset, RDF.type, DCAT.Dataset))
    hourly = policy.resolution == "hour"
    _dataset_text(p, dataset, kind, spec)
    g.add((dataset, DCTERMS.identifier, Literal(f"ioc-open-{kind}")))
    for keyword in (kind, *policy.metrics):
        g.add((dataset, DCAT.keyword, Literal(keyword)))
    g.add((dataset, DCAT.theme, URIRef(f"{EU}data-theme/{policy.theme}")))
    g.add((dataset, DCTERMS.publisher, p.publisher))
    g.add((dataset, DCAT.contactPoint, p.contact))
    g.add((dataset, DCTERMS.license, p.licence))
    g.add((dataset, DCTERMS.issued, p.issued))
    g.add((dataset, DCTERMS.modified, p.now))
    g.add((dataset, DCAT.landingPage, URIRef(f"{p.base}/open#dataset-{kind}")))
    frequency = "HOURLY" if hourly else "UPDATE_CONT"
    g.add((dataset, DCTERMS.accrualPeriodicity, URIRef(f"{EU}frequency/{frequency}")))
    resolution = "PT1H" if hourly else f"PT{spec.interval_s}S"
    g.add((dataset, DCAT.temporalResolution, Literal(resolution, datatype=XSD.duration)))
    _dataset_coverage(p, dataset, kind)
    _dataset_distributions(p, dataset, kind, files)


def build_catalog(
    config: OpenDataConfig,
    kinds: dict[str, KindSpec],
    base: str,
    coverage: Coverage,
    bulk_files: dict[str, dict[str, list[str]]],
    modified: datetime | None = None,
) -> Graph:
    """The catalogue graph; ``base`` is the server's public URL, ``bulk_files`` kind -> format -> file URLs."""
    g = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("vcard", VCARD), ("dcatap", DCATAP),
                       ("gsp", GSP), ("skos", SKOS)):  # fmt: skip
        g.bind(prefix, ns)
    modified = modified or datetime.now(UTC)
    parts = _Parts(
        g=g,
        base=base,
        config=config,
        coverage=coverage,
        modified=modified,
        catalog=URIRef(f"{base}/open/catalog"),
        publisher=URIRef(f"{base}/open/catalog#publisher"),
        licence=URIRef(LICENCES[config.licence]),
        contact=URIRef(f"{base}/open/catalog#contact"),
        service=URIRef(f"{base}/sta/v1.1"),
        issued=Literal(config.catalogue.issued.isoformat(), datatype=XSD.date),
        now=Literal(modified.replace(microsecond=0).isoformat(), datatype=XSD.dateTime),
    )
    _agents(parts)
    _catalog(parts)
    _service(parts)
    for kind in config.kinds:
        _dataset(parts, kind, kinds[kind], bulk_files.get(kind, {}))
    return g


def _distribution(
    g: Graph, dataset: URIRef, dist: URIRef, licence: URIRef, code: str, media: str, title: dict[str, str]
) -> None:
    g.add((dataset, DCAT.distribution, dist))
    g.add((dist, RDF.type, DCAT.Distribution))
    _text(g, dist, DCTERMS.title, title)
    _text(g, dist, DCTERMS.description, title)
    g.add((dist, DCTERMS.format, URIRef(f"{EU}file-type/{code}")))
    g.add((dist, DCAT.mediaType, URIRef(IANA + media)))
    g.add((dist, DCTERMS.license, licence))
    g.add((dist, DCATAP.availability, URIRef(f"{EU}planned-availability/STABLE")))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def serialise(graph: Graph, fmt: str) -> bytes:
    """The graph as Turtle (``turtle``) or JSON-LD (``json-ld``), UTF-8."""
    data = graph.serialize(format=fmt, encoding="utf-8")
    return data if isinstance(data, bytes) else str(data).encode()

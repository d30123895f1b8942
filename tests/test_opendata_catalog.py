"""The DCAT-AP 3.0 catalogue: 0 SHACL violations against the mandatory and recommended properties' shapes
(tests/opendata_shapes/dcat-ap-3.ttl, no network), served as Turtle and JSON-LD by suffix and by Accept, with
coverage taken from public devices only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyshacl
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SH

from ioc.kinds import load_kinds
from opendata.catalog import Coverage, build_catalog
from opendata.config import load_config
from tests.opendata_fixtures import SECRET, open_data_fixture, start_server  # noqa: F401 (fixtures)

SHAPES = Path(__file__).with_name("opendata_shapes") / "dcat-ap-3.ttl"


def shapes() -> Graph:
    """The shapes file (local: validation needs no network)."""
    return Graph().parse(SHAPES, format="turtle")


def validate(graph: Graph) -> tuple[bool, str]:
    """pyshacl's verdict and report."""
    conforms, _, report = pyshacl.validate(graph, shacl_graph=shapes(), inference="none", allow_warnings=False)
    return bool(conforms), str(report)


def failing_paths(graph: Graph) -> set[URIRef]:
    """The property paths of every violation."""
    _, results, _ = pyshacl.validate(graph, shacl_graph=shapes(), inference="none")
    return {URIRef(str(p)) for p in results.objects(None, SH.resultPath)}


def sample() -> Graph:
    """The shipped policy's catalogue with made-up coverage and one bulk file."""
    kinds = load_kinds(None)
    config = load_config(None, kinds)
    at = datetime(2026, 11, 20, tzinfo=UTC)
    cover = Coverage({k: (106.6, 10.7, 106.8, 10.9) for k in config.kinds}, dict.fromkeys(config.kinds, at),
                     dict.fromkeys(config.kinds, at))  # fmt: skip
    return build_catalog(config, kinds, "http://city.test", cover, {"flood": {"csv": ["http://city.test/f.csv.gz"]}})


def test_the_shipped_catalogue_has_no_violation() -> None:
    conforms, report = validate(sample())
    assert conforms, report


@pytest.mark.parametrize(
    ("subject_type", "predicate"),
    [(DCAT.Catalog, DCTERMS.publisher), (DCAT.Dataset, DCTERMS.temporal), (DCAT.Distribution, DCAT.accessURL),
     (DCAT.DataService, DCAT.endpointURL), (FOAF.Agent, DCTERMS.type), (DCAT.Dataset, DCAT.contactPoint)],
    ids=lambda v: str(v).rsplit("/", 1)[-1],
)  # fmt: skip
def test_the_shapes_catch_a_missing_property(subject_type: URIRef, predicate: URIRef) -> None:
    """Each removal of a mandatory or recommended property is a violation: the shapes are not empty promises."""
    graph = sample()
    for subject in list(graph.subjects(RDF.type, subject_type)):
        graph.remove((subject, predicate, None))
    assert failing_paths(graph) == {predicate}


def test_the_shapes_file_names_its_source() -> None:
    head = SHAPES.read_text().splitlines()[:8]
    assert any("DCAT-AP 3.0.0" in line for line in head)


@pytest.fixture(scope="module")
def server(run_ioc, module_scratch_dir, open_data) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server with the test policy (SECRET withheld)."""
    yield from start_server(run_ioc, module_scratch_dir("ioc-od-cat-"))


async def test_served_as_turtle_and_json_ld_by_suffix_and_accept(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        ttl = await http.get("/open/catalog.ttl")
        jsonld = await http.get("/open/catalog.jsonld")
        by_accept = await http.get("/open/catalog", headers={"Accept": "text/turtle;q=1, application/ld+json;q=0.5"})
        default = await http.get("/open/catalog")
        missing = await http.get("/open/catalog.xml")
    assert ttl.headers["content-type"].startswith("text/turtle")
    assert jsonld.headers["content-type"].startswith("application/ld+json")
    assert by_accept.headers["content-type"].startswith("text/turtle") and by_accept.headers["vary"] == "Accept"
    assert default.headers["content-type"].startswith("application/ld+json")
    assert missing.status_code == 404
    turtle = Graph().parse(data=ttl.text, format="turtle")
    assert len(turtle) == len(Graph().parse(data=jsonld.text, format="json-ld")) > 100
    conforms, report = validate(turtle)
    assert conforms, report
    catalog = URIRef(f"{server}/open/catalog")
    datasets = {str(d).rsplit("-", 1)[1] for d in turtle.objects(catalog, DCAT.dataset)}
    assert datasets == {"flood", "traffic", "camera"}
    assert (URIRef(f"{server}/sta/v1.1"), RDF.type, DCAT.DataService) in turtle
    licence = turtle.value(catalog, DCTERMS.license)
    assert str(licence) == "https://creativecommons.org/licenses/by/4.0/"


async def test_coverage_leaves_out_withheld_devices(server: str) -> None:
    """The withheld device (at 106.5, 10.5, outside every public one) does not widen the bounding boxes."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        text = (await http.get("/open/catalog.ttl")).text
    assert SECRET not in text
    boxes = [str(o) for o in Graph().parse(data=text, format="turtle").objects(None, DCAT.bbox)]
    assert boxes and not any("106.5 10.5" in box for box in boxes)

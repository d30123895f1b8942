"""Every dependency is declared where it is used: the product imports no test-only package, and each one
pyproject.toml declares is used by what installs it. Also: the suite's own modules load once."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from ioc.settings import REPO_ROOT

PRODUCT = ["ioc", "ingest", "dashboards", "simulators", "incidents", "opendata", "forecast", "migrations"]
OWN = {"ioc", "ingest", "dashboards", "simulators", "incidents", "opendata", "forecast", "tests", "common", "rawws"}
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
# Declared but used as data or through another package, not imported: say which, so the list stays honest.
NOT_IMPORTED = {
    "plotly": "dashboards.pages serves the plotly.js inside it",
    "fastapi-offline": "dashboards.apidocs serves its Swagger UI files",
}
# Installed with another declared package and imported directly: the declaring package pins them.
COMES_WITH = {"starlette": "fastapi", "uvloop": "uvicorn[standard]", "websockets": "uvicorn[standard]"}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: list[str]) -> set[str]:
    """The distribution names of requirement strings."""
    return {normalise(re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0]) for r in requirements}


def imported(folders: list[str]) -> dict[str, set[str]]:
    """Third-party distribution -> the files under ``folders`` that import it."""
    dists = packages_distributions()
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in OWN or top in sys.stdlib_module_names or top == "__future__":
                        continue
                    for dist in dists.get(top, [top]):
                        found.setdefault(normalise(dist), set()).add(str(path.relative_to(REPO_ROOT)))
    return found


MAIN = declared(PROJECT["dependencies"])
EXTRAS = {name: declared(reqs) for name, reqs in PROJECT["optional-dependencies"].items()}


def test_the_product_imports_only_what_installing_it_brings() -> None:
    used = imported(PRODUCT)
    allowed = MAIN | {normalise(d) for d in COMES_WITH}
    stray = {dist: files for dist, files in used.items() if dist not in allowed and dist not in EXTRAS["sim"]}
    assert not stray, f"imported by the product but not a dependency: {stray}"
    sim_only = {dist: files for dist, files in used.items() if dist in EXTRAS["sim"]}
    assert all(f.startswith("simulators/") for files in sim_only.values() for f in files), sim_only


def test_each_dependency_is_used_where_it_is_declared() -> None:
    product, dev = imported(PRODUCT), imported(["tests", "benchmarks"])
    unused = MAIN - product.keys() - {normalise(d) for d in NOT_IMPORTED}
    assert not unused, f"declared for the product, imported nowhere in it: {sorted(unused)}"
    assert EXTRAS["sim"] <= product.keys(), "the [sim] extra is for what the simulators import"
    tools = {"pytest", "pytest-asyncio", "pytest-timeout", "pytest-randomly", "ruff", "mypy", "types-pyyaml"}
    unused_dev = EXTRAS["dev"] - dev.keys() - tools
    assert not unused_dev, f"[dev] packages no test or benchmark imports: {sorted(unused_dev)}"
    assert not (EXTRAS["dev"] & MAIN), "a package is either the product's or the tests'"


def test_test_support_is_outside_the_product_and_conftest_loads_once() -> None:
    assert not list((REPO_ROOT / "dashboards").glob("testing.py"))
    assert "tests.conftest" in sys.modules and "conftest" not in sys.modules  # one copy of its state
    assert Path(sys.modules["tests.support.stack"].__file__ or "").parent == REPO_ROOT / "tests" / "support"

"""The pages router without a database: templates, catalogues, static files and plotly's bundle."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboards import pages
from dashboards.delta import LIST_KEYS
from dashboards.live_state import CHANNEL_NAMES
from dashboards.security import optional_user
from ioc.accounts import User
from ioc.settings import Settings

JS_DIR = pages.STATIC_DIR / "js"
TEMPLATES = sorted((pages.STATIC_DIR / "pages").glob("*.html"))


def make_client(user: User | None) -> TestClient:
    """The router alone in an app (no database: the session's user is given), with a tile URL configured."""
    app = FastAPI()
    app.state.settings = Settings(map_tile_url="http://tiles.invalid/{z}/{x}/{y}.png", environment="test")
    app.include_router(pages.router)
    app.dependency_overrides[optional_user] = lambda: user
    return TestClient(app)


def _config(page: str) -> dict[str, Any]:
    """The configuration a page embeds for its script."""
    blob = re.search(r'<script id="ioc-config" type="application/json">(.*?)</script>', page, re.S)
    assert blob is not None, "no ioc-config block"
    return json.loads(blob.group(1))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def client() -> TestClient:
    """Logged in as an operator."""
    return make_client(User("lan", "operator"))


@pytest.mark.parametrize("vi_file", sorted(pages.I18N_DIR.glob("*vi.json")), ids=lambda p: p.name)
def test_catalogues_have_the_same_keys(vi_file: Path) -> None:
    """Each Vietnamese catalogue and its English twin translate exactly the same messages, none empty."""
    vi = json.loads(vi_file.read_text(encoding="utf-8"))
    en = json.loads(vi_file.with_name(vi_file.name.replace("vi.json", "en.json")).read_text(encoding="utf-8"))
    assert set(vi) == set(en), f"only vi: {sorted(set(vi) - set(en))}; only en: {sorted(set(en) - set(vi))}"
    assert all(str(v).strip() for v in [*vi.values(), *en.values()])


def test_every_key_used_is_in_the_catalogue() -> None:
    """data-i18n attributes and literal t("...") calls only use keys that exist."""
    keys = set(pages.catalogue("vi"))
    in_templates: set[str] = set()
    for template in TEMPLATES:
        in_templates |= set(re.findall(r'data-i18n(?:-title|-aria|-placeholder)?="([^"]+)"', template.read_text()))
    in_scripts: set[str] = set()
    for script in JS_DIR.rglob("*.js"):  # modules in subfolders too
        in_scripts |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', script.read_text()))
    assert in_templates and in_scripts, "no keys found: the patterns above no longer match the pages"
    assert (in_templates | in_scripts) - keys == set()


class _VisibleText(HTMLParser):
    """Collects text a user would see: not in <script>, <style> or <title> (titles are catalogued)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in {"meta", "link", "img", "input", "br"}:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not set(self.stack) & {"script", "style", "title"} and re.search(r"[^\W\d_]", data):
            self.text.append(data.strip())


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_hard_coded_text(template: Path) -> None:
    """Every visible word of a page comes from the catalogues."""
    parser = _VisibleText()
    parser.feed(template.read_text())
    assert parser.text == []


@pytest.mark.parametrize("path", ["/wall", "/summary", "/zones/q1", "/devices/FL-BT-001"])
def test_pages_embed_their_config(client: TestClient, path: str) -> None:
    """Each page answers HTML with its configuration (tiles URL, heartbeat) embedded as JSON."""
    resp = client.get(path)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    config = _config(resp.text)
    assert config["mapTileUrl"] == "http://tiles.invalid/{z}/{x}/{y}.png"
    assert config["heartbeatS"] > 0
    assert config["user"] == {"name": "lan", "role": "operator", "canAct": True}
    assert "{{" not in resp.text
    csp = resp.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert csp.endswith("; img-src 'self' http://tiles.invalid")  # the configured tile server, nothing else


def test_pages_carry_the_servers_contract(client: TestClient) -> None:
    """Every page gets the live channels' ``meta`` (list keys, thresholds, channel names) and each kind's metric
    units from the server: the browser defines none of them."""
    config = _config(client.get("/wall").text)
    meta = config["meta"]
    assert meta["keys"] == LIST_KEYS
    assert meta["channels"] == CHANNEL_NAMES
    assert meta["thresholds"]["cameras"]["quiet_severity"] == "info"
    assert meta["kinds"]["flood"]["water_level_cm"] == "cm"
    assert list(meta["kinds"]) == ["flood", "traffic", "camera", "air"]
    assert meta["kinds"]["air"]["pm25_ugm3"] == "ug/m3"
    # Labels of the kinds file, for kinds and metrics a page's catalogue does not name.
    assert meta["labels"]["kinds"]["air"] == {"vi": "Cảm biến không khí", "en": "Air-quality sensor"}
    assert meta["labels"]["metrics"]["humidity_pct"]["en"] == "Humidity"


def test_scripts_spell_no_channel_name_or_domain_rule() -> None:
    """Channel names, the incident severity, the congestion bands and the VN_AQI scale are the server's (``meta``):
    no script writes one of them as a literal."""
    forbidden = [
        r"""["'`](?:zone|kind|device):""",  # a channel family's prefix
        r"""(?:channel|name)\s*===?\s*["'`]""",  # a channel compared with a name written out
        r"""channels:\s*\[\s*["'`]""",  # a subscription to a name written out
        r"""severity\s*!==?\s*["']info["']""",
        r"""\[\s*"ok",\s*"warning",\s*"warning",\s*"critical"\s*\]""",
        r"""incident_window_s|(?:warning_cm|danger_cm|free_flow_kmh)\s*[:=]\s*\d""",  # a threshold read or set here
        # a VN_AQI band, its colour or an index compared with a number (the scale is meta.thresholds.air)
        r"""["'`](?:moderate|poor|very_bad|hazardous)["'`]|#(?:00e400|ff7e00|8f3f97|7e0023)\b|aqi\s*[<>]=?\s*\d""",
    ]
    found = [
        f"{path.relative_to(JS_DIR)}: {m.group(0)}"
        for path in JS_DIR.rglob("*.js")
        if path.name != "contract.js"
        for pattern in forbidden
        for m in re.finditer(pattern, path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize("user", [None, User("new", "operator", must_change=True)], ids=["anonymous", "must-change"])
def test_pages_need_a_session(user: User | None) -> None:
    """Without a usable session every page sends the browser to the login page, and back afterwards."""
    c = make_client(user)
    resp = c.get("/zones/q1?range=7d", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=/zones/q1%3Frange%3D7d"
    assert c.get("/static/js/wall.js").status_code == 200  # assets stay public, like the login page's


def test_viewers_cannot_act() -> None:
    """A viewer's page says so (the wall hides acknowledge and resolve)."""
    config = _config(make_client(User("an", "viewer")).get("/wall").text)
    assert config["user"]["canAct"] is False


def test_lang_parameter_sets_the_document_language(client: TestClient) -> None:
    """?lang=en renders the English title server-side; anything else falls back to Vietnamese."""
    assert '<html lang="en">' in client.get("/wall?lang=en").text
    assert '<html lang="vi">' in client.get("/wall?lang=xx").text


def test_plotly_is_served_from_the_python_package(client: TestClient) -> None:
    """/static/vendor/plotly.min.js is the plotly package's own bundle."""
    resp = client.get("/static/vendor/plotly.min.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/javascript")
    assert resp.content == pages.plotly_bundle().read_bytes()
    assert not (pages.STATIC_DIR / "vendor").exists(), "plotly must not be copied into the repository"


def test_static_files_stay_inside_the_static_folder(client: TestClient) -> None:
    """Assets are served; traversal and unknown ids are 404."""
    assert client.get("/static/js/wall.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../pages.py").status_code == 404
    assert client.get("/static/%2e%2e/pages.py").status_code == 404
    assert client.get("/devices/bad%20id").status_code == 404


def test_page_ids_follow_the_one_id_pattern(client: TestClient) -> None:
    """A zone or device page takes exactly the ids the registry takes (ioc.topics): no trailing newline."""
    assert client.get("/devices/FL-BT-001").status_code == 200
    assert client.get("/devices/FL-BT-001%0A").status_code == 404
    assert client.get("/zones/q1%0A").status_code == 404
    assert client.get(f"/zones/{'z' * 65}").status_code == 404
    assert client.get("/i18n/fr.json").status_code == 404


@pytest.mark.parametrize("path", ["/devices/FL-1%0A", "/zones/q1%0A", "/devices/FL-1%0D", "/devices/" + "F" * 65])
def test_ids_outside_the_contract_are_refused(client: TestClient, path: str) -> None:
    """Page ids follow ioc.topics' one id pattern: a trailing newline (which ``$`` lets through) is a 404."""
    assert client.get(path).status_code == 404


def test_no_external_assets() -> None:
    """Pages, styles and scripts reference nothing on another origin (they must work offline)."""
    for path in [*TEMPLATES, *JS_DIR.rglob("*.js"), *(pages.STATIC_DIR / "css").glob("*.css")]:
        text = path.read_text()
        external = r"""(src|href)=["']https?://|url\(\s*["']?https?://|import .* from ["']https?://"""
        assert not re.search(external, text), path

"""The dashboards people see: HTML pages (wall, summary, drill-downs, incidents) and their static assets.

Pages are plain HTML templates under ``static/pages`` with one placeholder for the page's
configuration (JSON); the browser does the rest with ES modules, no build step. Plotly's bundle is
served from the installed ``plotly`` package so nothing is copied into the repository and no page
loads anything from another origin. Pages need a session (else they redirect to ``/login``); the
static assets and catalogues are public, like the login page's.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from dashboards.api.deps import ConnDep
from dashboards.live_state import META
from dashboards.security import PAGE_HEADERS, optional_user
from incidents import field
from ioc.accounts import User
from ioc.fleet import ZONE_ID_RE
from ioc.kinds import load_kinds
from ioc.settings import Settings, get_settings
from ioc.topics import DEVICE_ID_RE

STATIC_DIR = Path(__file__).resolve().parent / "static"
I18N_DIR = Path(__file__).resolve().parent / "i18n"
LANGUAGES = ("vi", "en")
# A static file's path: up to 5 names of [A-Za-z0-9._-], none starting with "."; anything else (NUL,
# "..", over-long names, odd bytes) is a 404 before the file system sees it.
_STATIC_PATH = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}/){0,4}[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}\Z")
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)
MaybeUser = Annotated[User | None, Depends(optional_user)]


@lru_cache(maxsize=1)
def plotly_bundle() -> Path:
    """The minified plotly.js inside the installed ``plotly`` package."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found in the plotly package ({path})")
    return path


def catalogue(lang: str) -> dict[str, str]:
    """The message catalogue of ``lang`` (``vi`` or ``en``)."""
    return json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def _settings(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


def page_meta(settings: Settings) -> dict[str, Any]:
    """The live channels' ``meta`` (list keys, thresholds, channel names), each kind's metrics with units, and
    the kinds' and metrics' labels of the kinds file (what a page shows for a kind its catalogue lacks)."""
    kinds = load_kinds(settings.kinds_file)
    units = {name: {m: spec.unit for m, spec in kind.metrics.items()} for name, kind in kinds.items()}
    labels = {
        "kinds": {name: kind.label for name, kind in kinds.items() if kind.label},
        "metrics": {m: spec.label for kind in kinds.values() for m, spec in kind.metrics.items() if spec.label},
    }
    return {**META, "kinds": units, "labels": labels}


def page_config(settings: Settings, page: str, user: User, **extra: Any) -> dict[str, Any]:
    """What a page's script needs from the server: who is looking, map tiles, heartbeat, the contract, its subject."""
    return {
        "page": page,
        "user": {"name": user.name, "role": user.role, "canAct": user.can("operator")},
        "mapTileUrl": settings.map_tile_url,
        "heartbeatS": settings.ws_heartbeat_s,
        "staleAfterIntervals": settings.stale_after_intervals,
        "meta": page_meta(settings),
        **extra,
    }


def render(page: str, config: dict[str, Any], lang: str = "vi") -> str:
    """The page template with its configuration embedded and the default language's title."""
    template = (STATIC_DIR / "pages" / f"{page}.html").read_text(encoding="utf-8")
    # Safe inside <script type="application/json">: "<" never appears literally.
    blob = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    title = html.escape(catalogue(lang).get(f"title.{page}", "IOC"))
    return template.replace("{{config}}", blob).replace("{{title}}", title).replace("{{lang}}", lang)


def _page(request: Request, user: User | None, page: str, **extra: Any) -> Response:
    if user is None or user.must_change:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(here, safe='/')}", status_code=303)
    lang = request.query_params.get("lang", "vi")
    lang = lang if lang in LANGUAGES else "vi"
    settings = _settings(request)
    body = render(page, page_config(settings, page, user, **extra), lang)
    return HTMLResponse(body, headers=page_headers(settings))


def page_headers(settings: Settings) -> dict[str, str]:
    """The security headers of our pages; a configured tile server is the one other origin images may come from."""
    headers = dict(PAGE_HEADERS)
    tiles = urlsplit(settings.map_tile_url)
    if tiles.scheme in {"http", "https"} and tiles.netloc:
        origin = f"{tiles.scheme}://{tiles.netloc}".replace("{s}", "*")
        headers["Content-Security-Policy"] += f"; img-src 'self' {origin}"
    return headers


@router.get("/wall", response_model=None)
async def wall(request: Request, user: MaybeUser) -> Response:
    """The operators' wall."""
    return _page(request, user, "wall")


@router.get("/summary", response_model=None)
async def summary(request: Request, user: MaybeUser) -> Response:
    """The leaders' summary for tablets."""
    return _page(request, user, "summary")


@router.get("/simulate", response_model=None)
async def simulate(request: Request, user: MaybeUser) -> Response:
    """What-if simulations for leaders (viewers and up; tablet-friendly)."""
    return _page(request, user, "simulate")


@router.get("/console", response_model=None)
async def console(request: Request, user: MaybeUser) -> Response:
    """The operators' incident console (viewers see it read-only)."""
    return _page(request, user, "console")


@router.get("/handover", response_model=None)
async def handover(request: Request, user: MaybeUser) -> Response:
    """The shift handover report (printable)."""
    return _page(request, user, "handover")


@router.get("/procedures", response_model=None)
async def procedures(request: Request, user: MaybeUser) -> Response:
    """The incident types' procedures: admins edit them (a new version each save), others read them."""
    return _page(request, user, "procedures", canEdit=bool(user and user.can("admin")))


@router.get("/zones/{zone_id}", response_model=None)
async def zone(request: Request, zone_id: str, user: MaybeUser) -> Response:
    """Drill-down on one zone."""
    if not ZONE_ID_RE.match(zone_id):  # the registry's id pattern; anything else is a 404 before any template work
        raise HTTPException(404, "unknown zone")
    return _page(request, user, "zone", zoneId=zone_id)


@router.get("/devices/{device_id}", response_model=None)
async def device(request: Request, device_id: str, user: MaybeUser) -> Response:
    """Drill-down on one device."""
    if not DEVICE_ID_RE.match(device_id):
        raise HTTPException(404, "unknown device")
    return _page(request, user, "device", deviceId=device_id)


@router.get("/open", response_model=None)
async def open_data(request: Request) -> Response:
    """The open data page: datasets, API, bulk files, licence and examples (public: no login; opendata/)."""
    lang = request.query_params.get("lang", "vi")
    lang = lang if lang in LANGUAGES else "vi"
    return HTMLResponse(render("open", {"page": "open"}, lang), headers=PAGE_HEADERS)


@router.get("/field/{token}", response_model=None)
async def field_page(request: Request, token: str, conn: ConnDep) -> Response:
    """A field link's phone page (public: the token is the permission); 404 unknown, 410 expired or revoked."""
    lang = request.query_params.get("lang", "vi")
    lang = lang if lang in LANGUAGES else "vi"
    status, config = 200, {"page": "field", "token": token, "link": "live"}
    try:
        if not re.match(field.TOKEN_RE, token):
            raise field.LinkUnknown("malformed")
        await field.resolve(conn, token)
    except field.LinkUnknown:
        status, config = 404, {"page": "field", "link": "unknown"}
    except field.LinkGone as exc:
        status, config = 410, {"page": "field", "link": "gone", "detail": str(exc)}
    headers = {**page_headers(_settings(request)), "Referrer-Policy": "no-referrer"}  # the token is in the URL
    return HTMLResponse(render("field", config, lang), status_code=status, headers=headers)


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    """Browsers ask for it; answer with the SVG icon."""
    return RedirectResponse("/static/img/icon.svg", status_code=308)


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the installed Python package."""
    return FileResponse(
        plotly_bundle(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/static/{path:path}")
def static(path: str) -> Response:
    """A file under ``dashboards/static`` (never outside it); any malformed path is a 404."""
    if not _STATIC_PATH.match(path):
        raise HTTPException(404, "not found")
    target = (STATIC_DIR / path).resolve()
    if not target.is_file() or not target.is_relative_to(STATIC_DIR):
        raise HTTPException(404, "not found")
    media = "text/javascript" if target.suffix == ".js" else None
    return FileResponse(target, media_type=media, headers=_NO_CACHE)


@router.get("/i18n/{lang}.json")
def messages(lang: str) -> Response:
    """A message catalogue."""
    if lang not in LANGUAGES:
        raise HTTPException(404, "unknown language")
    return FileResponse(I18N_DIR / f"{lang}.json", media_type="application/json", headers=_NO_CACHE)

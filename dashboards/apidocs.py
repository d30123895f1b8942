"""The API's documentation page, Swagger UI (``/docs``), served from this server.

The JavaScript and CSS come from the ``fastapi-offline`` package (pinned in constraints.txt), which
ships Swagger UI's release files; nothing is fetched from another origin, so the page works in a
control room without internet and falls under the same strict Content-Security-Policy as our own
pages (no inline script: Swagger UI is started by ``static/apidocs.js``). ReDoc is off: its sidebar
always loads the vendor's logo from the vendor's server, whatever the options.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from dashboards.api.errors import ApiError
from dashboards.security import PAGE_HEADERS

router = APIRouter(include_in_schema=False)

# Swagger UI draws its icons from data: URIs.
DOCS_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; img-src 'self' data:",
}
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ioc API: Swagger UI</title>
<link rel="icon" href="/static/img/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/apidocs.js"></script>
</body>
</html>
"""

@lru_cache(maxsize=1)
def assets_dir() -> Path:
    """The folder of Swagger UI's files inside the installed ``fastapi_offline`` package."""
    path = Path(str(resources.files("fastapi_offline") / "static"))
    missing = [name for name in ASSETS if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"fastapi_offline no longer ships {', '.join(missing)} in {path}")
    return path


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI on this server's OpenAPI document."""
    return HTMLResponse(SWAGGER_PAGE, headers=DOCS_HEADERS)


@router.get("/docs/assets/{name}")
async def asset(name: str) -> FileResponse:
    """One of Swagger UI's files (a fixed list)."""
    if name not in ASSETS:
        raise ApiError(404, "not_found", "not found")
    return FileResponse(
        assets_dir() / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
    )

"""The default response class: JSON with ISO UTC times and NaN/infinity as null."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from dashboards.encoding import dumps


class SafeJSONResponse(JSONResponse):
    """JSONResponse rendered by ``dashboards.encoding.dumps``."""

    def render(self, content: Any) -> bytes:
        """Serialise ``content``."""
        return dumps(content).encode("utf-8")

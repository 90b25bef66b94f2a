"""The REST API under `/api`: every endpoint declared once (`http.API`), by the modules here;
`routes()` for aiohttp and `openapi_document()` (served at `GET /api/openapi.json`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from signaling.api import (  # noqa: F401 (each declares its endpoints on import)
    auth,
    boards,
    bookings,
    me,
    stations,
)
from signaling.api.http import API
from signaling.api.openapi import document

__all__ = ["openapi_document", "routes"]

VERSION = "0.1.0"
DESCRIPTION = (
    'RadioCore\'s REST API. Errors are `{"error": {"code", "message"[, "field"]}}` with '
    "the codes of docs/protocol.md; 422 names the offending field; 429 carries Retry-After."
)


def openapi_document() -> dict[str, Any]:
    return document(API, title="RadioCore", version=VERSION, description=DESCRIPTION)


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[_DOCUMENT])


_DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document", dict)


def routes(app: web.Application) -> list[web.RouteDef]:
    """Every API route, and `GET /api/openapi.json` (made once per app)."""
    app[_DOCUMENT] = openapi_document()
    return [*API.routes(), web.get("/api/openapi.json", _openapi)]

"""The HTTP side beside the API (`signaling.api`): health, SFU figures, the console's static
files, and the security headers every response carries."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from aiohttp import web

from signaling import api, keys

logger = logging.getLogger(__name__)

#: Sent with every response. The console keys a transmitter: no other site may frame it (a
#: click-jacked PTT button) or run script in it; it loads nothing from elsewhere (stations sit
#: on isolated networks); only it may ask for the microphone.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    # no product and version for scanners to match against vulnerability lists
    "Server": "RadioCore",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response, Socket.IO's and errors included, gets them."""
    response.headers.update(SECURITY_HEADERS)


async def health(request: web.Request) -> web.Response:
    """`GET /health`: the server answers; `turn`: the TURN allocation check (`turn.probe`)."""
    return web.json_response({"status": "ok", "turn": request.app[keys.TURN_HEALTH].to_json()})


async def sfu_stats(request: web.Request) -> web.Response:
    """SFU counters and sampled forwarding latency (for `radiocore bench`); loopback only."""
    # a reverse proxy on the same machine connects from loopback for everyone: what it
    # forwards (X-Forwarded-For) is not local
    if request.remote not in ("127.0.0.1", "::1") or "X-Forwarded-For" in request.headers:
        raise web.HTTPForbidden()
    if request.query.get("reset") == "1":
        request.app[keys.SFU].reset_latency()
    return web.json_response(dataclasses.asdict(request.app[keys.SFU].stats()))


def add_routes(app: web.Application, web_root: Path) -> None:
    index = web_root / "index.html"
    app.on_response_prepare.append(add_security_headers)

    async def console(request: web.Request) -> web.FileResponse:
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.router.add_routes(
        [
            *api.routes(app),
            web.get("/health", health),
            web.get("/api/internal/sfu", sfu_stats),
            web.get("/", console),
            # the sticker's pairing link (`signaling.qr`): the console reads its id and code
            web.get("/pair", console),
        ]
    )
    app.router.add_static("/static/", web_root, follow_symlinks=False)

"""The REST API of this version: login, health, SFU figures, and the console's static files."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import msgspec
from aiohttp import web

from signaling import keys
from signaling.auth import OperatorIdentity, verify_password_async
from signaling.errors import AuthError, BadRequestError, SignalingError
from signaling.store import canonical_board_id

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


class LoginRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: str = msgspec.field()
    password: str = msgspec.field()


def error_response(exc: SignalingError) -> web.Response:
    return web.json_response(
        {"error": {"code": exc.code.value, "message": exc.message}}, status=exc.http_status
    )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, however many TCP segments it came in; `BadRequestError` as soon
    as it is known to be over `limit` bytes (the rest is not read)."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequestError("request body too large")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)  # what is buffered, up to that
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BadRequestError("request body too large")
        chunks.append(chunk)


async def _json_body(request: web.Request, body_type: type[LoginRequest]) -> LoginRequest:
    raw = await read_body(request, request.app[keys.CONFIG].limits.max_json_body_bytes)
    try:
        return msgspec.json.decode(raw, type=body_type)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BadRequestError(f"invalid request body: {exc}") from None


async def login(request: web.Request) -> web.Response:
    try:
        body = await _json_body(request, LoginRequest)
        store = request.app[keys.STORE]
        user = await store.get_user_by_email(body.email)
        # verify against a hash even for an unknown user: no timing oracle for emails
        stored = user.password_hash if user is not None else None
        if not await verify_password_async(body.password, stored) or user is None:
            raise AuthError("wrong email or password")
    except SignalingError as exc:
        return error_response(exc)
    authority = request.app[keys.AUTHORITY]
    token = authority.issue(OperatorIdentity(user_id=user.id, callsign=user.callsign))
    logger.info("operator %s logged in", user.callsign)
    return web.json_response(
        {"token": token, "expires_in": authority.ttl_s, "callsign": user.callsign}
    )


async def _bearer_identity(request: web.Request) -> OperatorIdentity:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("send the token from /api/auth/login as 'Authorization: Bearer …'")
    return await request.app[keys.STATIONS].authenticate_operator(token.strip())


async def tx_log(request: web.Request) -> web.Response:
    """`GET /api/boards/{board_id}/tx-log`: the board's transmissions, newest first (owner)."""
    try:
        identity = await _bearer_identity(request)
        board_id = canonical_board_id(request.match_info["board_id"])
        sessions = await request.app[keys.STATIONS].tx_log(identity, board_id)
    except SignalingError as exc:
        return error_response(exc)
    return web.json_response(
        {
            "board_id": board_id,
            "sessions": [
                {
                    "callsign": s.callsign,
                    "user_id": s.user_id,
                    "started_at": s.started_at.isoformat(),
                    "ended_at": s.ended_at.isoformat() if s.ended_at else None,
                    "reason": s.reason,
                }
                for s in sessions
            ],
        }
    )


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
            web.post("/api/auth/login", login),
            web.get("/health", health),
            web.get("/api/boards/{board_id}/tx-log", tx_log),
            web.get("/api/internal/sfu", sfu_stats),
            web.get("/", console),
        ]
    )
    app.router.add_static("/static/", web_root, follow_symlinks=False)

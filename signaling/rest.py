"""The HTTP side beside the API (`signaling.api`): liveness (`/health`), readiness (`/ready`),
metrics (`/metrics`), SFU figures, the console's static files, and the security headers every
response carries."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Final

from aiohttp import web

from signaling import api, keys
from signaling.metrics import CONTENT_TYPE, auth_entry

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


#: How long `/ready` waits for each dependency to answer.
READY_TIMEOUT_S: Final = 1.0


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response, Socket.IO's and errors included, gets them."""
    response.headers.update(SECURITY_HEADERS)


async def count_auth_failures(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: an API answer 401 is a refused credential
    (`radiocore_auth_failures_total`)."""
    if response.status == 401 and request.path.startswith("/api/"):
        request.app[keys.METRICS].auth_failure(auth_entry(request.method, request.path))


async def health(request: web.Request) -> web.Response:
    """`GET /health`: liveness, the server answers; `turn`: the TURN allocation check
    (`turn.probe`)."""
    return web.json_response({"status": "ok", "turn": request.app[keys.TURN_HEALTH].to_json()})


async def ready(request: web.Request) -> web.Response:
    """`GET /ready`: readiness. 200 `{"status": "ready", "checks": {...}}` when the database
    answers a trivial query, Redis (when configured) answers PING and the TURN allocation check
    (when TURN is configured) passed. Without Redis or TURN the node still serves (rate limits
    counted on this node; direct paths): 200 `"status": "degraded"`, `"degraded": [names]` — a
    load balancer must not drain every node because a service they share is down. Without its
    database it cannot: 503, `"status": "not_ready"`. Each failed check is
    `{"ok": false, "error": "<short reason>"}`; each waits `READY_TIMEOUT_S` at most."""
    app = request.app
    store = app.get(keys.STORE)
    client = app.get(keys.REDIS)
    pending: dict[str, Awaitable[object] | None] = {
        "database": store.ping() if store is not None else None,
    }
    if client is not None:
        pending["redis"] = client.ping()
    names = list(pending)
    answers = await asyncio.gather(*(_bounded(pending[name]) for name in names))
    checks: dict[str, dict[str, object]] = dict(zip(names, answers, strict=True))
    if client is None:
        checks["redis"] = {"ok": True, "configured": False}
    checks["turn"] = _turn_check(app)
    for name, check in checks.items():
        _log_change(app, name, check)
    ok = bool(checks["database"]["ok"])  # what this node cannot serve without
    degraded = [name for name, check in checks.items() if not check["ok"]]
    status = "not_ready" if not ok else "degraded" if degraded else "ready"
    body: dict[str, object] = {"status": status, "checks": checks}
    if ok and degraded:
        body["degraded"] = degraded
    return web.json_response(body, status=200 if ok else 503, headers={"Cache-Control": "no-store"})


async def _bounded(call: Awaitable[object] | None) -> dict[str, object]:
    if call is None:
        return {"ok": False, "error": "not open (the server is starting or stopping)"}
    try:
        await asyncio.wait_for(call, READY_TIMEOUT_S)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {READY_TIMEOUT_S:g} s"}
    except Exception as exc:
        return {"ok": False, "error": _reason(exc), "detail": exc}
    return {"ok": True}


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during (a client library's error wraps
    the socket's)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _reason(exc: Exception) -> str:
    """A short public reason: what kind of failure, never an address or a credential (the log
    has the whole error)."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        what = "connection refused"
    elif any(isinstance(e, TimeoutError) for e in chain) or "timed out" in text:
        what = "timed out"
    elif "closed" in text or "lost" in text:
        what = "connection closed"
    elif any(isinstance(e, OSError | ConnectionError) for e in chain) or "connect" in text:
        what = "unreachable"
    else:
        what = "query failed"
    return f"{what} ({type(exc).__name__})"


def _turn_check(app: web.Application) -> dict[str, object]:
    health = app[keys.TURN_HEALTH]
    if not health.configured:
        return {"ok": True, "configured": False}
    if health.ok is None:
        return {"ok": False, "error": "the TURN allocation check has not finished"}
    if not health.ok:
        failed = "; ".join(f"{r.transport}: {r.detail}" for r in health.results if not r.ok)
        return {"ok": False, "error": failed[:300]}
    return {"ok": True}


def _log_change(app: web.Application, name: str, check: dict[str, object]) -> None:
    """Log a check that fails, with the whole error, and one that recovers, once each time."""
    detail = check.pop("detail", None)
    states = app[keys.METRICS].readiness
    ok = bool(check["ok"])
    if states.get(name, True) == ok:
        states[name] = ok
        return
    states[name] = ok
    if ok:
        logger.info("ready: %s answers again", name)
    else:
        chain = _chain(detail) if isinstance(detail, BaseException) else []
        whole = " <- ".join(f"{type(e).__name__}: {e}" for e in chain)
        logger.warning("not ready: %s: %s (%s)", name, check.get("error"), whole)


def _local(request: web.Request) -> bool:
    """From this machine itself, not forwarded by a proxy on it (a reverse proxy on the same
    machine connects from loopback for everyone: what it forwards is not local)."""
    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    return request.remote in ("127.0.0.1", "::1") and not forwarded


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: Prometheus text format (`signaling.metrics`), to loopback or to a bearer
    of `metrics.token`; else 403."""
    token = request.app[keys.CONFIG].metrics.token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    bearer = bool(token) and scheme.lower() == "bearer"
    allowed = bearer and hmac.compare_digest(given.strip().encode(), token.encode())
    if not allowed and not _local(request):
        raise web.HTTPForbidden(text="metrics are served to loopback or with the metrics token")
    body = await request.app[keys.METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def sfu_stats(request: web.Request) -> web.Response:
    """SFU counters and sampled forwarding latency (for `radiocore bench`); loopback only."""
    if not _local(request):
        raise web.HTTPForbidden()
    reset = request.query.get("reset") == "1"
    if reset:
        request.app[keys.SFU].reset_latency()
    stats: dict[str, object] = dataclasses.asdict(request.app[keys.SFU].stats())
    stations = request.app.get(keys.STATIONS)
    if stations is not None and stations.workers is not None:  # each worker's own, in a list
        stats["workers"] = await stations.workers.stats(reset=reset)
    return web.json_response(stats)


def add_routes(app: web.Application, web_root: Path) -> None:
    index = web_root / "index.html"
    app.on_response_prepare.append(add_security_headers)
    app.on_response_prepare.append(count_auth_failures)

    async def console(request: web.Request) -> web.FileResponse:
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.router.add_routes(
        [
            *api.routes(app),
            web.get("/health", health),
            web.get("/ready", ready),
            web.get("/metrics", metrics),
            web.get("/api/internal/sfu", sfu_stats),
            web.get("/", console),
            # the sticker's pairing link (`signaling.qr`): the console reads its id and code
            web.get("/pair", console),
        ]
    )
    app.router.add_static("/static/", web_root, follow_symlinks=False)

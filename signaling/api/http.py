"""The REST API's plumbing: every endpoint is declared once — method, path, what it takes and
what it answers — and both its aiohttp route and its OpenAPI description (`openapi`) are made
from that declaration, so the document cannot drift from the code.

A handler receives a `Call` (the request, the caller's identity when the endpoint needs one,
the decoded body) and returns a msgspec value (or None for 204). Around it, one wrapper:

- authentication: `Authorization: Bearer <access token>`; refused with 401 before the body is
  read;
- the body: at most `limits.max_json_body_bytes`, JSON, decoded strictly into the endpoint's
  request type (unknown fields refused). Malformed JSON is 400 `bad_request`; a value of the
  wrong type, a missing or an unknown field is 422 `bad_request` with `field` naming it;
- errors: any `SignalingError` becomes `{"error": {"code", "message"[, "field"]}}` with its
  HTTP status (and `Retry-After` for 429 and 503); the database not answering is 503
  `unavailable`; anything else is logged and answered 500 `internal`, never with its text.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from aiohttp import web

from signaling import keys
from signaling.auth import OperatorIdentity
from signaling.errors import (
    AuthError,
    BadRequestError,
    SignalingError,
    UnavailableError,
    ValidationFailedError,
)

logger = logging.getLogger(__name__)

Handler = Callable[["Call"], Awaitable[Any]]

_PATH_PARAMETER: Final = re.compile(r"\{([a-z_]+)\}")
#: msgspec names the offending field as `$.field` or `$.items[0].field`; a missing one in
#: backticks.
_FIELD_AT: Final = re.compile(r"at `\$\.?([^`]*)`")
_MISSING_FIELD: Final = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN_FIELD: Final = re.compile(r"unknown field `([^`]+)`")


@dataclass(frozen=True)
class QueryParameter:
    """A query parameter an endpoint reads (documented; read by the handler itself)."""

    name: str
    description: str
    example: str | None = None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    tag: str
    handler: Handler
    #: The JSON body's type (a msgspec Struct), or None for no body.
    request: type[Any] | None
    #: The 2xx body's type, or None for an empty (204) answer.
    response: Any
    status: int
    #: Needs `Authorization: Bearer <access token>`.
    auth: bool
    #: The error statuses it may answer with, besides 500 (documented).
    errors: tuple[int, ...]
    query: tuple[QueryParameter, ...] = ()
    description: str = ""

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


@dataclass
class Call:
    """One request as a handler sees it."""

    request: web.Request
    identity: OperatorIdentity | None
    body: Any

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def caller(self) -> OperatorIdentity:
        """The authenticated caller (endpoints declared with `auth`)."""
        if self.identity is None:  # a declaration error, not the client's
            raise RuntimeError("this endpoint was declared without auth")
        return self.identity

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    def query(self, name: str) -> str | None:
        return self.request.query.get(name)

    @property
    def remote(self) -> str:
        """The client's address: the peer's, or behind a trusted reverse proxy the one its
        X-Forwarded-For names (`client_address`)."""
        return client_address(self.request)


@dataclass
class Api:
    """The set of endpoints; `routes()` for aiohttp, `openapi.document(api)` for the rest."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        request: type[Any] | None = None,
        response: Any = None,
        status: int = 200,
        auth: bool = True,
        errors: tuple[int, ...] = (),
        query: tuple[QueryParameter, ...] = (),
        description: str = "",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            implied: tuple[int, ...] = (401,) if auth else ()
            if request is not None:
                implied += (400, 422)
            self.endpoints.append(
                Endpoint(
                    method.upper(), path, summary, tag, handler, request, response,
                    status if response is not None else 204, auth,
                    tuple(sorted(set(errors) | set(implied))), query, description,
                )
            )  # fmt: skip
            return handler

        return register

    def routes(self) -> list[web.RouteDef]:
        # a path parameter is any one segment: aiohttp's default pattern leaves out `{` and
        # `}`, and such an id got the router's plain-text 404 instead of the endpoint's answer
        return [
            web.route(
                endpoint.method, _PATH_PARAMETER.sub(r"{\1:[^/]+}", endpoint.path), _wrap(endpoint)
            )
            for endpoint in self.endpoints
        ]


#: API answers carry tokens and personal data: no cache (browser, proxy) may keep them.
NO_STORE: Final = {"Cache-Control": "no-store"}

#: Every endpoint of the server, declared by the modules of `signaling.api`.
API: Final = Api()


def client_address(request: web.Request) -> str:
    """Who sent `request`: its peer address, unless that peer is one of `trusted_proxies`;
    then X-Forwarded-For is read from the right (the hops the trusted proxies appended), and
    the first address that is not a trusted proxy is the client. A header the client wrote
    itself stays to the left of that and is never believed."""
    peer = request.remote or "unknown"
    trusted = _trusted_networks(request.app[keys.CONFIG].trusted_proxies)
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _within(hop, trusted):
            return hop
    return peer


@functools.lru_cache(maxsize=8)
def _trusted_networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _within(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def error_response(exc: SignalingError) -> web.Response:
    error: dict[str, Any] = {"code": exc.code.value, "message": exc.message}
    field_name = getattr(exc, "field", None)
    if field_name:
        error["field"] = field_name
    headers = {}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))  # never early
    return web.json_response(
        {"error": error}, status=exc.http_status, headers={**NO_STORE, **headers}
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


def decode_json(raw: bytes, body_type: type[Any]) -> Any:
    """`raw` decoded strictly as `body_type`: 400 when it is not JSON, 422 naming the field
    when a value does not fit."""
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 inside a string too
        raise BadRequestError("the request body is not valid JSON (UTF-8)") from None
    except RecursionError:  # msgspec's nesting limit: a few thousand brackets
        raise BadRequestError("the request body is JSON nested too deeply") from None
    try:
        return msgspec.convert(value, body_type)
    except msgspec.ValidationError as exc:
        raise validation_error(str(exc)) from None


def validation_error(text: str) -> ValidationFailedError:
    """msgspec's complaint as a 422 naming the field."""
    for pattern in (_MISSING_FIELD, _UNKNOWN_FIELD, _FIELD_AT):
        found = pattern.search(text)
        if found and found.group(1):
            name = found.group(1)
            message = text.split(" - at ", 1)[0]
            return ValidationFailedError(f"{name}: {message}", field=name)
    return ValidationFailedError(text)


async def bearer_identity(request: web.Request) -> OperatorIdentity:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send an access token as 'Authorization: Bearer …'")
    return await request.app[keys.STATIONS].authenticate_operator(token.strip())


def _wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            identity = await bearer_identity(request) if endpoint.auth else None
            body = None
            if endpoint.request is not None:
                limit = request.app[keys.CONFIG].limits.max_json_body_bytes
                body = decode_json(await read_body(request, limit), endpoint.request)
            result = await endpoint.handler(Call(request, identity, body))
        except SignalingError as exc:
            return error_response(exc)
        except Exception as exc:
            if request.app[keys.STORE].is_outage(exc):  # nothing was written: try again
                logger.warning(
                    "%s %s: the database did not answer (%s)",
                    endpoint.method,
                    endpoint.path,
                    type(exc).__name__,
                )
                return error_response(UnavailableError())
            logger.exception("%s %s failed", endpoint.method, endpoint.path)
            return error_response(SignalingError())
        if endpoint.response is None:
            return web.Response(status=204, headers=NO_STORE)
        return web.Response(
            body=msgspec.json.encode(result),
            status=endpoint.status,
            content_type="application/json",
            headers=NO_STORE,
        )

    handle.__name__ = endpoint.operation_id
    return handle

"""`ServerLink`: the agent's Socket.IO connection to the server, for one session.

It keeps what is particular to Socket.IO out of the session: connecting to `/agent` with the
board's credentials (and turning a refusal into a message that says what to fix), calling an
event and decoding its ack (`{"ok": true, ...}` or `{"ok": false, "error": ...}`), and logging
the server's `error` events. A closed connection is reported to the session's
`ConnectionLoss`. python-socketio's own reconnection is disabled: the agent's loop is the only
one that reconnects.
"""

from __future__ import annotations

import logging
from typing import Final, TypeVar

import socketio

from radiocore_protocol import (
    AGENT_NAMESPACE,
    AgentAuth,
    ErrorBody,
    ErrorCode,
    MediaFailed,
    PlacedElsewhere,
    ProtocolError,
    Shutdown,
    decode_payload,
    to_builtins,
)

from .config import AgentConfig
from .connection_loss import ConnectionLoss
from .errors import ConfigError, PlacedElsewhereError, SessionError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest server refusal text the agent logs.
MAX_REFUSAL_CHARS: Final = 1024


class ServerLink:
    """One Socket.IO client connected to the `/agent` namespace; `close()` ends it."""

    def __init__(
        self,
        config: AgentConfig,
        loss: ConnectionLoss,
        url: str,
        other_servers: tuple[str, ...] = (),
    ) -> None:
        """`other_servers`: the other nodes this agent can reach, told to the server so that it
        may place the station on one of them (`placed_elsewhere`); empty: not placed."""
        self._config = config
        self._loss = loss
        self.url = url
        self._other_servers = other_servers
        self._refusals: list[object] = []
        # handle_sigint=False: otherwise engineio installs a SIGINT handler on connect that
        # cancels every task in the loop, bypassing the agent's clean shutdown
        self._sio = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, logger=False, engineio_logger=False
        )
        self._sio.on(
            "connect_error",
            lambda data=None: self._refusals.append(data),
            namespace=AGENT_NAMESPACE,
        )
        self._sio.on(
            "disconnect",
            lambda reason=None: loss.lose(f"the server connection closed ({reason})"),
            namespace=AGENT_NAMESPACE,
        )
        self._sio.on("error", self._server_error, namespace=AGENT_NAMESPACE)
        self._sio.on("shutdown", _log_shutdown, namespace=AGENT_NAMESPACE)

    def _server_error(self, data: object = None) -> None:
        try:
            failed = decode_payload(MediaFailed, data)
        except ProtocolError:
            _log_server_error(data)
            return
        # the server gave up on this session's media: start the next attempt now
        why = f"the server could not connect the media ({failed.reason}): {failed.message}"
        self._loss.lose(why)

    async def connect(self) -> None:
        """Connect with the board's credentials; `SessionError` saying why if that fails.
        The secret is read now (with `secret_file`: from the file as it is now, so a rotated
        secret written there is used at the next attempt)."""
        config = self._config
        try:
            secret = config.board_secret()
        except ConfigError as exc:
            raise SessionError(f"{exc}; it is read again before the next attempt") from None
        auth = to_builtins(
            AgentAuth(
                board_id=config.board_id, secret=secret, other_servers=list(self._other_servers)
            )
        )
        try:
            await self._sio.connect(
                self.url,
                auth=auth,
                namespaces=[AGENT_NAMESPACE],
                transports=["websocket"],
                wait_timeout=config.connect_timeout_s,
            )
        except socketio.exceptions.ConnectionError as exc:
            last = self._refusals[-1] if self._refusals else None
            placed = placed_elsewhere(last)
            if placed is not None:
                if placed.server in self._other_servers:
                    raise PlacedElsewhereError(placed.message, placed.server) from None
                raise SessionError(
                    f"the server at {self.url} placed this station on {placed.server!r}, which "
                    "is not one of this agent's other_server_urls: not followed"
                ) from None
            refusal = connect_refusal(last) if last is not None else None
            if refusal is None:
                raise SessionError(f"cannot connect to {self.url}: {exc}") from None
            code, message = refusal
            if code is ErrorCode.UNAUTHORIZED:
                what = (
                    f"the secret in {config.secret_file} (read again before the next attempt: "
                    "write the board's new secret there if it was rotated)"
                    if config.secret_file
                    else "the secret"
                )
                raise SessionError(
                    f"the server refused this board's credentials (unauthorized: {message}); "
                    f"check board_id and {what}"
                ) from None
            detail = f"{code.value}: {message}" if code else message
            raise SessionError(
                f"the server refused the connection to {self.url} ({detail})"
            ) from None
        logger.info("signaling connected to %s", self.url)

    async def call(self, event: str, data: dict[str, object], reply_type: type[T]) -> T:
        """Emit `event` and decode its ack, which must be `{"ok": true, ...reply_type}`;
        `SessionError` if it is a refusal, invalid, late, or the connection is lost first."""
        try:
            reply = await self._loss.race(
                self._sio.call(
                    event, data, namespace=AGENT_NAMESPACE, timeout=self._config.connect_timeout_s
                ),
                f"the server connection closed while waiting for the {event!r} reply",
            )
        except socketio.exceptions.TimeoutError:
            raise SessionError(f"the server did not answer {event!r}") from None
        return decode_ack(event, reply, reply_type)

    async def close(self) -> None:
        """Disconnect (harmless if the connection never came up or is gone already)."""
        await self._sio.disconnect()


def decode_ack(event: str, reply: object, reply_type: type[T]) -> T:
    """The payload of the ack of `event`, which must be `{"ok": true, ...reply_type}`;
    `SessionError` saying why for a refusal or an ack that is not one."""
    if not isinstance(reply, dict):
        raise SessionError(f"the server's {event!r} reply is not a JSON object")
    if reply.get("ok") is not True:
        error = error_body(reply.get("error"))
        detail = f"{error.code.value}: {error.message}" if error else "no error given"
        raise SessionError(f"the server refused {event!r} ({detail})")
    try:
        return decode_payload(reply_type, {k: v for k, v in reply.items() if k != "ok"})
    except ProtocolError as exc:
        raise SessionError(f"the server's {event!r} reply is invalid: {exc.message}") from None


def placed_elsewhere(value: object) -> PlacedElsewhere | None:
    """The body of a `connect_error` with code `placed_elsewhere`, if `value` is one
    (`{"message": text, "data": body}`, as python-socketio sends a refusal)."""
    data = value.get("data") if isinstance(value, dict) else None
    try:
        body = decode_payload(PlacedElsewhere, data)
    except ProtocolError:
        return None
    return body if body.code is ErrorCode.PLACED_ELSEWHERE else None


def error_body(value: object) -> ErrorBody | None:
    """An `{"code", "message"}` error body if `value` is one."""
    try:
        return decode_payload(ErrorBody, value)
    except ProtocolError:
        return None


def connect_refusal(value: object) -> tuple[ErrorCode | None, str] | None:
    """The code and message of a `connect_error`; None when there is none (e.g. the server was
    unreachable, and python-socketio reports a plain string).

    The server raises `ConnectionRefusedError(text, body)`, which python-socketio sends as
    `{"message": text, "data": body}` with the protocol's `{"code", "message"}` body. A refusal
    without a body (`{"message": text}`) is taken as `unauthorized` when its text says so.
    """
    if not isinstance(value, dict):
        return None
    for candidate in (value, value.get("data")):
        body = error_body(candidate)
        if body is not None:
            return body.code, body.message
    text = value.get("message")
    if not isinstance(text, str):
        return None
    code = ErrorCode.UNAUTHORIZED if "unauthorized" in text.lower() else None
    return code, text[:MAX_REFUSAL_CHARS]


def _log_server_error(data: object = None) -> None:
    error = error_body(data)
    if error is not None:
        logger.warning("server error %s: %s", error.code.value, error.message)
    else:
        logger.warning("server error: %r", data)


def _log_shutdown(data: object = None) -> None:
    """The server announced it is stopping; the agent reconnects with its back-off anyway."""
    try:
        notice = decode_payload(Shutdown, data)
    except ProtocolError:
        logger.info("the server is stopping")
        return
    logger.info(
        "the server is stopping (%s); it expects to be back in about %d s",
        notice.message,
        notice.retry_after_s,
    )

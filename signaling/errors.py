"""The errors of the signaling server: one root, `SignalingError`, and a subclass per outcome.

Each error carries the protocol `ErrorCode` a client receives and the HTTP status the REST API
answers with, so the transports turn any of them into a reply without knowing the cause.
Messages are fixed sentences chosen where the error is raised; they never contain a secret,
a token or a password.
"""

from __future__ import annotations

from typing import ClassVar

from radiocore_protocol import ErrorBody, ErrorCode, failure


class SignalingError(Exception):
    """Root of every error the signaling server raises on purpose."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "the server failed; nothing was changed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    def to_ack(self) -> dict[str, object]:
        """The refused Socket.IO acknowledgement for this error."""
        return failure(self.code, self.message)

    def to_body(self) -> ErrorBody:
        """The `{code, message}` body of an `error` event or REST error reply."""
        return ErrorBody(code=self.code, message=self.message)


class BadRequestError(SignalingError):
    """The input is well-formed for the transport but not acceptable (e.g. not a UUID)."""

    code = ErrorCode.BAD_REQUEST
    http_status = 400
    default_message = "invalid request"


class ValidationFailedError(BadRequestError):
    """A value of the request does not fit (wrong type, missing, unknown, out of range): REST
    answers 422 naming the field."""

    http_status = 422
    default_message = "a value of the request is not valid"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        #: The offending field (dotted path), when one is to blame.
        self.field = field


class UnavailableError(SignalingError):
    """A service the server depends on did not answer (its database): nothing was changed, and
    the same request may succeed in a few seconds. REST answers 503 with `Retry-After`."""

    code = ErrorCode.UNAVAILABLE
    http_status = 503
    default_message = (
        "the server cannot reach its database right now; nothing was changed; try again shortly"
    )
    retry_after_s: ClassVar[int] = 5


class RateLimitedError(SignalingError):
    """Too many requests of this kind from this client: try again after `retry_after_s`."""

    code = ErrorCode.RATE_LIMITED
    http_status = 429
    default_message = "too many requests; try again later"

    def __init__(self, message: str | None = None, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AuthError(SignalingError):
    """Missing, forged or expired credentials."""

    code = ErrorCode.UNAUTHORIZED
    http_status = 401
    default_message = "not authenticated"


class ForbiddenError(SignalingError):
    """Authenticated, but without the right to do this."""

    code = ErrorCode.FORBIDDEN
    http_status = 403
    default_message = "not allowed"


class NotFoundError(SignalingError):
    """No such user or board."""

    code = ErrorCode.NOT_FOUND
    http_status = 404
    default_message = "not found"


class ConflictError(SignalingError):
    """The change clashes with what is stored (an email already registered, a board id taken,
    an overlapping booking): 409 `conflict`."""

    code = ErrorCode.CONFLICT
    http_status = 409
    default_message = "already exists"


class NotJoinedError(SignalingError):
    """The event needs a prior `join` of the board."""

    code = ErrorCode.NOT_JOINED
    http_status = 409
    default_message = "join the board first"


class ConfigError(SignalingError):
    """The server's configuration is unusable; raised at start-up, never sent to a client."""

    code = ErrorCode.INTERNAL
    http_status = 500
    default_message = "invalid configuration"

"""The protocol's error codes, and the exception a strict decoder raises."""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    """Every error code a client can receive; each has one fixed meaning."""

    BAD_REQUEST = "bad_request"  # malformed or invalid payload
    TOO_LARGE = "too_large"  # message over a protocol limit
    UNKNOWN_EVENT = "unknown_event"  # Socket.IO event the namespace does not have
    UNKNOWN_MESSAGE = "unknown_message"  # data-channel message type not in the protocol
    UNAUTHORIZED = "unauthorized"  # missing, forged or expired credentials
    FORBIDDEN = "forbidden"  # authenticated, but no right to do this
    NOT_FOUND = "not_found"  # no such board
    NOT_JOINED = "not_joined"  # event needs a prior `join` of that board
    STATION_OFFLINE = "station_offline"  # the station's media is not up
    FLOOR_BUSY = "floor_busy"  # someone else holds the transmitter
    BAD_SDP = "bad_sdp"  # the session description could not be applied
    RATE_LIMITED = "rate_limited"  # too many messages
    RIG_ERROR = "rig_error"  # the rig refused a command or did not answer
    MEDIA_FAILED = "media_failed"  # a peer connection's media failed (ICE or DTLS): `reason`
    CONFLICT = "conflict"  # clashes with what is stored (email taken, booking overlaps)
    UNAVAILABLE = "unavailable"  # a service the server needs (its database) is down: try again
    PLACED_ELSEWHERE = "placed_elsewhere"  # an agent's station goes on the node in `server`
    INTERNAL = "internal"  # the server failed; nothing was changed


class ProtocolError(Exception):
    """A message that does not follow the protocol; `code` says which way."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

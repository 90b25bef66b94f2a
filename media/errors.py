"""Errors of the SFU. Signaling turns each into a clear error to the client."""

from __future__ import annotations

from radiocore_protocol import ErrorCode


class MediaError(Exception):
    """Root of SFU errors; `code` is the protocol error code a client receives."""

    code = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadSdpError(MediaError):
    code = ErrorCode.BAD_SDP


class BadCandidateError(MediaError):
    """A trickled ICE candidate aiortc cannot parse, or one for no m-line of the offer."""

    code = ErrorCode.BAD_REQUEST


class StationOfflineError(MediaError):
    code = ErrorCode.STATION_OFFLINE

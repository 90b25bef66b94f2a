"""Exceptions of the board agent: one root, `AgentError`, and a subclass per concern."""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the board agent raises on purpose."""


class ConfigError(AgentError):
    """The configuration (file, environment or flags) is invalid; the message says which key."""


class AudioError(AgentError):
    """An audio source, sink or the Opus encoder could not be opened or used."""


class StationError(AgentError):
    """The station (rig) refused or failed to apply a control message."""


class InvalidCommandError(StationError):
    """The station's own checks refused a command (outside the rig's frequency ranges, a mode
    the rig lacks, power out of 0 … 100 %); nothing was sent to the rig."""


class RigError(StationError):
    """rigctld answered a request with an error (`RPRT n`, n < 0); `code` is Hamlib's number
    (negative, as on the wire), or None when the failure is not Hamlib's (see subclasses)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RigTimeoutError(RigError):
    """rigctld did not complete a reply within the agent's `rig_timeout_s`."""


class RigOfflineError(RigError):
    """There is no usable connection to rigctld (refused, closed, or the rig is not answering)."""


class RigctldProcessError(StationError):
    """The rigctld process the agent starts itself could not be started."""


class SessionError(AgentError):
    """A connection to the server could not be established or was refused."""


class PlacedElsewhereError(SessionError):
    """A node of a server of several refused the connection with `placed_elsewhere`: the
    station goes on the node at `server`, one of the agent's `other_server_urls`."""

    def __init__(self, message: str, server: str) -> None:
        super().__init__(message)
        self.server = server

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


class SessionError(AgentError):
    """A connection to the server could not be established or was refused."""

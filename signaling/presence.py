"""Which boards are online, and through which connection.

One interface, and the in-process implementation for one node; a Redis implementation with
TTLs comes with scale-out and plugs in at start-up.
"""

from __future__ import annotations

import abc


class Presence(abc.ABC):
    @abc.abstractmethod
    def set_online(self, board_id: str, connection_id: str) -> str | None:
        """Mark the board online via `connection_id`; returns the connection it replaces."""

    @abc.abstractmethod
    def set_offline(self, board_id: str, connection_id: str) -> bool:
        """Mark the board offline if `connection_id` is its current one; True when it was."""

    @abc.abstractmethod
    def is_online(self, board_id: str) -> bool: ...

    @abc.abstractmethod
    def connection_of(self, board_id: str) -> str | None: ...


class LocalPresence(Presence):
    """Presence for a single node, in memory."""

    def __init__(self) -> None:
        self._connections: dict[str, str] = {}

    def set_online(self, board_id: str, connection_id: str) -> str | None:
        previous = self._connections.get(board_id)
        self._connections[board_id] = connection_id
        return previous if previous != connection_id else None

    def set_offline(self, board_id: str, connection_id: str) -> bool:
        if self._connections.get(board_id) != connection_id:
            return False
        del self._connections[board_id]
        return True

    def is_online(self, board_id: str) -> bool:
        return board_id in self._connections

    def connection_of(self, board_id: str) -> str | None:
        return self._connections.get(board_id)

"""Which boards are online, and through which connection their agent is signaling.

Online means the station can be used now: its agent's media is up in the SFU and its control
channel is open (the SFU reports that; see `media.sfu.StationObserver`), not merely that its
Socket.IO connection is open. The agent's signaling connection is tracked beside it so that a
reconnecting agent replaces its previous connection.

One interface, and the in-process implementation for one node; `signaling.cluster` has the one
shared by several nodes through Redis (with TTLs), plugged in at start-up when `redis_url` is set.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

#: Told that a board went online (True) or offline (False).
Announce = Callable[[str, bool], Awaitable[None]]

#: Told, synchronously, that a station on another node went online (True) or offline (False).
PresenceListener = Callable[[str, bool], None]


class Presence(abc.ABC):
    #: This node's name (`home()` of the stations connected here).
    node: str

    @abc.abstractmethod
    def agent_connected(self, board_id: str, connection_id: str) -> str | None:
        """The board's agent signals through `connection_id` now; returns the one it replaces."""

    @abc.abstractmethod
    def agent_disconnected(self, board_id: str, connection_id: str) -> bool:
        """Forget `connection_id` if it is the board's current one; True when it was."""

    @abc.abstractmethod
    def set_online(self, board_id: str, online: bool) -> bool:
        """Record whether the station's media is up; True when that changed."""

    @abc.abstractmethod
    def is_online(self, board_id: str) -> bool: ...

    @abc.abstractmethod
    def home(self, board_id: str) -> str | None:
        """The node the station is online on (`node` when it is this one); None when it is
        offline."""

    def listen(self, listener: PresenceListener) -> None:  # noqa: B027 - one node: no others
        """Have `listener` told when a station on another node goes on- or offline."""

    async def start(self) -> None:  # noqa: B027 - nothing to start in memory
        """Begin sharing presence (with other nodes)."""

    async def close(self) -> None:  # noqa: B027 - nothing to stop in memory
        """Stop sharing presence."""


#: `home()` of a station online on the only node there is.
LOCAL_NODE = "local"


class LocalPresence(Presence):
    """Presence for a single node, in memory."""

    def __init__(self) -> None:
        self.node = LOCAL_NODE
        self._connections: dict[str, str] = {}
        self._online: set[str] = set()

    def agent_connected(self, board_id: str, connection_id: str) -> str | None:
        previous = self._connections.get(board_id)
        self._connections[board_id] = connection_id
        return previous if previous != connection_id else None

    def agent_disconnected(self, board_id: str, connection_id: str) -> bool:
        if self._connections.get(board_id) != connection_id:
            return False
        del self._connections[board_id]
        return True

    def set_online(self, board_id: str, online: bool) -> bool:
        if online == (board_id in self._online):
            return False
        if online:
            self._online.add(board_id)
        else:
            self._online.discard(board_id)
        return True

    def is_online(self, board_id: str) -> bool:
        return board_id in self._online

    def home(self, board_id: str) -> str | None:
        return LOCAL_NODE if board_id in self._online else None

    def online_boards(self) -> list[str]:
        return list(self._online)


class PresenceTracker:
    """The SFU's `StationObserver`: records each station going on- and offline in `Presence` and
    has it announced to operators (by `announce`, connected once signaling is up).

    The SFU reports synchronously; announcing is asynchronous (Socket.IO emits), so each
    announcement runs as a task this tracker owns, in order per board, and `close()` ends them.
    """

    def __init__(self, presence: Presence) -> None:
        self.presence = presence
        self._announce: Announce | None = None
        self._pending: dict[str, asyncio.Task[None]] = {}
        presence.listen(self._elsewhere)

    def connect(self, announce: Announce) -> None:
        self._announce = announce

    def station_up(self, board_id: str) -> None:
        self._changed(board_id, online=True)

    def station_down(self, board_id: str) -> None:
        self._changed(board_id, online=False)

    def _changed(self, board_id: str, *, online: bool) -> None:
        if not self.presence.set_online(board_id, online):
            return
        logger.info("station %s is %s", board_id, "online" if online else "offline")
        self._queue_announcement(board_id, online)

    def _elsewhere(self, board_id: str, online: bool) -> None:
        """A station on another node went on- or offline: this node's operators are told."""
        if online:
            logger.info("station %s is online on node %s", board_id, self.presence.home(board_id))
        else:
            logger.info("station %s is offline (it was on another node)", board_id)
        self._queue_announcement(board_id, online)

    def _queue_announcement(self, board_id: str, online: bool) -> None:
        announce = self._announce
        if announce is None:
            return
        previous = self._pending.get(board_id)
        task = asyncio.get_running_loop().create_task(
            self._announce_after(previous, announce, board_id, online)
        )
        self._pending[board_id] = task
        task.add_done_callback(lambda done: self._forget(board_id, done))

    @staticmethod
    async def _announce_after(
        previous: asyncio.Task[None] | None, announce: Announce, board_id: str, online: bool
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # presence reaches operators in the order it changed
        try:
            await announce(board_id, online)
        except Exception:
            logger.exception("announcing that %s is %s failed", board_id, online)

    def _forget(self, board_id: str, task: asyncio.Task[None]) -> None:
        if self._pending.get(board_id) is task:
            del self._pending[board_id]

    async def close(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()

"""Floor control: at most one transmitter per station, and who is told what when it changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class FloorHolder:
    key: str  # participant key
    callsign: str
    user_id: str | None
    started_at: datetime  # UTC


class FloorObserver(Protocol):
    """Told of every transmission's start and end (the TX audit log implements this)."""

    def tx_started(self, board_id: str, holder: FloorHolder) -> None: ...

    def tx_ended(self, board_id: str, holder: FloorHolder, reason: str) -> None: ...


class NoFloorObserver:
    def tx_started(self, board_id: str, holder: FloorHolder) -> None:
        pass

    def tx_ended(self, board_id: str, holder: FloorHolder, reason: str) -> None:
        pass


class FloorControl:
    """Who may send audio to the station's transmitter now: one holder or nobody.

    Policy (who may take it, override, dead-man and time-out timers) lives in the room; this
    class only keeps the one fact consistent.
    """

    def __init__(self) -> None:
        self._holder: FloorHolder | None = None

    @property
    def holder(self) -> FloorHolder | None:
        return self._holder

    def grant(self, holder: FloorHolder) -> None:
        if self._holder is not None and self._holder.key != holder.key:
            raise ValueError("the floor is held; release it first")
        self._holder = holder

    def release(self) -> FloorHolder | None:
        """Release the floor; returns who held it."""
        holder, self._holder = self._holder, None
        return holder

    def holds(self, key: str) -> bool:
        return self._holder is not None and self._holder.key == key

"""Floor control: at most one transmitter per station."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FloorHolder:
    key: str  # participant key
    callsign: str


class FloorControl:
    """Who may send audio to the station's transmitter now.

    This version grants the floor to the first operator with a transmit right who asks and
    takes it back when that operator releases it or leaves; owner override, keep-alives and
    the TX time-out build on this class.
    """

    def __init__(self) -> None:
        self._holder: FloorHolder | None = None

    @property
    def holder(self) -> FloorHolder | None:
        return self._holder

    def request(self, key: str, callsign: str) -> FloorHolder | None:
        """Take the floor for `key`; returns None when granted, else the current holder."""
        if self._holder is not None and self._holder.key != key:
            return self._holder
        self._holder = FloorHolder(key, callsign)
        return None

    def release(self, key: str) -> bool:
        """Release the floor if `key` holds it; True when it did."""
        if self._holder is not None and self._holder.key == key:
            self._holder = None
            return True
        return False

    def holds(self, key: str) -> bool:
        return self._holder is not None and self._holder.key == key

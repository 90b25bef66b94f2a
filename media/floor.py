"""Floor control: at most one transmitter per station, and the rules that keep it safe.

`FloorPolicy` is the one object a room consults about transmitting. It decides who may take
the floor (an operator allowed to transmit, when nobody holds it; the station's owner at any
time, by override), keys the station only when the key will reach it, runs the holder's
dead-man timer (refreshed by keep-alives), the transmission time-out and the warning before
it, and says what is sent to whom when a transmission ends: PTT off to the station (never
dropped), the reason to the former holder, the new floor to every operator, and the end to
the observer (the TX audit log). The room routes audio and messages, and reaches the station
and the operators for the policy through `FloorRoom`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import radiocore_protocol as protocol
from media.config import SfuConfig
from media.participant import ParticipantIdentity
from radiocore_protocol import ErrorCode, ProtocolError

logger = logging.getLogger(__name__)

PTT_ON = protocol.encode(protocol.Ptt(state=True))
PTT_OFF = protocol.encode(protocol.Ptt(state=False))
KEEPALIVE = protocol.encode(protocol.Keepalive())


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


class FloorRoom(Protocol):
    """What the floor policy needs of the room it serves."""

    def station_ready(self) -> bool:
        """A message sent to the station now would be delivered: it is online and its control
        channel is not backed up."""
        ...

    def send_to_station(self, data: bytes, *, despite_backlog: bool = False) -> bool:
        """Queue a message to the station; False when it was dropped (no open channel, or a
        backed-up one unless `despite_backlog`)."""
        ...

    def release_station(self, release: bytes, key: bytes) -> None:
        """Send PTT off to the station ahead of its backlog, though never ahead of a waiting
        `key`; a station it cannot be sent to at all is dropped (its own link loss unkeys)."""
        ...

    def send_to_operator(self, key: str, data: bytes) -> None:
        """Send to the operator `key`, if it is in the room."""
        ...

    def operator_keys(self) -> Iterable[str]: ...

    def floor_changed(self) -> None:
        """The holder changed (a transmission began or ended); `floor` was sent to everyone."""
        ...


class FloorPolicy:
    """Who transmits on one station, and for how long (see the module docstring)."""

    def __init__(
        self,
        board_id: str,
        config: SfuConfig,
        room: FloorRoom,
        observer: FloorObserver | None = None,
    ) -> None:
        self._board_id = board_id
        self._config = config
        self._room = room
        self._observer = observer or NoFloorObserver()
        self._holder: FloorHolder | None = None
        self._deadman: asyncio.TimerHandle | None = None
        self._timeout: asyncio.TimerHandle | None = None
        self._warning: asyncio.TimerHandle | None = None

    def holds(self, key: str) -> bool:
        return self._holder is not None and self._holder.key == key

    @property
    def holder(self) -> FloorHolder | None:
        """Who transmits now, if anyone."""
        return self._holder

    def press(self, who: ParticipantIdentity) -> bool:
        """`who` pressed PTT. True when a transmission began (its audio is a new source), False
        when `who` already held the floor (the press refreshes the dead-man). Raises
        `ProtocolError` when refused; then nothing has changed."""
        if not who.can_transmit:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"{who.callsign} may listen but not control this station"
            )
        holder = self._holder
        if holder is not None and holder.key == who.key:
            self.keepalive(who.key)
            return False
        if holder is not None and not who.is_owner:
            raise ProtocolError(ErrorCode.FLOOR_BUSY, f"{holder.callsign} is transmitting")
        if not self._room.station_ready():  # a key that may not arrive must not take the floor
            raise ProtocolError(
                ErrorCode.STATION_OFFLINE, "the station cannot be reached now; PTT was not keyed"
            )
        if holder is not None:
            self.end("override", by=who.callsign)
        self._start(
            FloorHolder(
                key=who.key,
                callsign=who.callsign,
                user_id=who.user_id,
                started_at=datetime.now(UTC),
            )
        )
        return True

    def release(self, key: str) -> None:
        """The operator `key` let go of PTT (a no-op unless it holds the floor)."""
        if self.holds(key):
            self.end("released")

    def keepalive(self, key: str) -> None:
        """The holder is still pressing: restart the dead-man and tell the station."""
        if not self.holds(key):
            return  # a late keep-alive after release is harmless
        if self._deadman is not None:
            self._deadman.cancel()
        self._deadman = asyncio.get_running_loop().call_later(
            self._config.deadman_s, self.end, "deadman"
        )
        self._room.send_to_station(KEEPALIVE)  # if dropped, the station's own dead-man decides

    def left(self, key: str) -> None:
        """The operator `key` left the room: its transmission, if any, ends at once."""
        if self.holds(key):
            self.end("link_lost")

    def revoke(self, key: str) -> bool:
        """The operator `key` lost its right to transmit (signaling re-checks access): its
        transmission, if any, ends at once (`access_ended`); True when it held the floor.
        Refusing its later presses is the room's part (its identity no longer transmits)."""
        if not self.holds(key):
            return False
        self.end("access_ended")
        return True

    def end(self, reason: protocol.TxEndReason, by: str | None = None) -> None:
        """End the current transmission, if any: PTT off at the station, everyone told."""
        for timer in (self._deadman, self._timeout, self._warning):
            if timer is not None:
                timer.cancel()
        self._deadman = self._timeout = self._warning = None
        holder, self._holder = self._holder, None
        if holder is None:
            return
        self._room.release_station(PTT_OFF, PTT_ON)
        logger.info(
            "%s's transmission on %s ended: %s",
            holder.callsign,
            self._board_id,
            reason,
            extra={"board_id": self._board_id, "operator_id": holder.user_id, "reason": reason},
        )
        if reason != "released":
            message = protocol.PttReleased(reason=reason, by=by)
            self._room.send_to_operator(holder.key, protocol.encode(message))
        self._broadcast()
        self._observer.tx_ended(self._board_id, holder, reason)

    def floor_for(self, key: str) -> bytes:
        """The `floor` message for the operator `key`."""
        holder = self._holder
        if holder is None:
            return protocol.encode(protocol.Floor(holder=None))
        if holder.key != key:
            return protocol.encode(protocol.Floor(holder=holder.callsign))
        return protocol.encode(
            protocol.Floor(holder=holder.callsign, you=True, tx_limit_s=self.tx_limit_s)
        )

    @property
    def tx_limit_s(self) -> int:
        """The longest continuous transmission, whole seconds (told to the holder)."""
        return max(1, round(self._config.tx_timeout_s))

    def _start(self, holder: FloorHolder) -> None:
        self._holder = holder
        self._room.send_to_station(PTT_ON, despite_backlog=True)  # station_ready() said it goes
        loop = asyncio.get_running_loop()
        config = self._config
        self._deadman = loop.call_later(config.deadman_s, self.end, "deadman")
        self._timeout = loop.call_later(config.tx_timeout_s, self.end, "timeout")
        if 0 < config.tx_warning_s < config.tx_timeout_s:
            self._warning = loop.call_later(
                config.tx_timeout_s - config.tx_warning_s, self._warn, holder.key
            )
        logger.info(
            "%s keyed station %s",
            holder.callsign,
            self._board_id,
            extra={"board_id": self._board_id, "operator_id": holder.user_id},
        )
        self._broadcast()
        self._observer.tx_started(self._board_id, holder)

    def _warn(self, key: str) -> None:
        if self.holds(key):
            remaining = round(self._config.tx_warning_s)
            self._room.send_to_operator(
                key, protocol.encode(protocol.TxWarning(remaining_s=remaining))
            )

    def _broadcast(self) -> None:
        for key in self._room.operator_keys():
            self._room.send_to_operator(key, self.floor_for(key))
        self._room.floor_changed()

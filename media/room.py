"""A station's room: its agent, its operators, audio both ways, data-channel routing, floor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiortc.rtp import RtpPacket

import radiocore_protocol as protocol
from media.config import SfuConfig
from media.floor import FloorControl, FloorHolder, FloorObserver, NoFloorObserver
from media.forwarder import LatencyRecorder, RtpFanout
from media.participant import AGENT_KEY, Participant, ParticipantIdentity, Role
from radiocore_protocol import ErrorCode, ProtocolError

logger = logging.getLogger(__name__)

_KEY = protocol.encode(protocol.Ptt(state=True))
_RELEASE = protocol.encode(protocol.Ptt(state=False))
_KEEPALIVE = protocol.encode(protocol.Keepalive())


class Room:
    """Everything the SFU knows about one board (station).

    RX: the agent's audio is forwarded to every operator with a receiving m-line.
    TX: an operator's audio is forwarded to the agent only while that operator holds the floor.
    Control messages from operators are validated and, where allowed, forwarded to the agent;
    station messages are validated and forwarded to every operator.

    Transmit safety, on the server side: one holder at a time (the owner may override); the
    holder's keep-alives feed a dead-man timer; a continuous transmission ends at the time-out
    (with a warning before); losing the holder's link or the station ends it at once. Every
    end sends PTT off to the station, tells the holder why, and is reported to the observer.
    """

    def __init__(
        self,
        board_id: str,
        config: SfuConfig,
        latency: LatencyRecorder | None,
        observer: FloorObserver | None = None,
        on_empty: Callable[[Room], None] | None = None,
    ) -> None:
        self.board_id = board_id
        self._config = config
        self._observer = observer or NoFloorObserver()
        self._on_empty = on_empty
        self.agent: Participant | None = None
        self.operators: dict[str, Participant] = {}
        #: Participants whose offer is being negotiated (trickled candidates find them here).
        self.negotiating: dict[str, Participant] = {}
        self.rx = RtpFanout(latency=latency)
        self.tx = RtpFanout()
        self.floor = FloorControl()
        self.capabilities: protocol.Capabilities | None = None
        self._deadman: asyncio.TimerHandle | None = None
        self._timeout: asyncio.TimerHandle | None = None
        self._warning: asyncio.TimerHandle | None = None
        self.last_status: bytes | None = None
        self.invalid_messages = 0
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def empty(self) -> bool:
        return self.agent is None and not self.operators and not self.negotiating

    def participant(self, key: str) -> Participant | None:
        """The participant `key`, its negotiating session first (trickled candidates)."""
        return self.negotiating.get(key) or self._admitted(key)

    def _admitted(self, key: str) -> Participant | None:
        return self.agent if key == AGENT_KEY else self.operators.get(key)

    @property
    def station_online(self) -> bool:
        return self.agent is not None

    def new_participant(self, identity: ParticipantIdentity) -> Participant:
        return Participant(
            identity,
            self._config,
            on_packet=self._packet,
            on_message=self._message,
            on_channel_open=self._channel_open,
            on_gone=self._gone,
        )

    def finish_negotiation(self, participant: Participant) -> None:
        if self.negotiating.get(participant.key) is participant:
            del self.negotiating[participant.key]

    async def admit(self, participant: Participant) -> None:
        """Make a negotiated participant part of the room, replacing its previous session."""
        if participant.identity.role is Role.AGENT:
            previous = self.agent
            if previous is not None:
                self._end_tx("station_lost")  # the new session starts unkeyed
                self.capabilities = None
            self.agent = participant
            self.rx.new_source()
            if participant.target is not None:
                self.tx.add(participant.target)
        else:
            previous = self.operators.get(participant.key)
            self.operators[participant.key] = participant
            if participant.target is not None:
                self.rx.add(participant.target)
        if previous is not None and previous is not participant:
            await self._drop(previous)

    async def remove(self, key: str) -> None:
        participant = self._admitted(key)
        if participant is not None:
            await self._drop(participant)

    async def close(self) -> None:
        for participant in [*self.operators.values(), *([self.agent] if self.agent else [])]:
            await self._drop(participant)
        for task in list(self._closing):
            await task

    async def _drop_gone(self, participant: Participant) -> None:
        await self._drop(participant)
        if self.empty and self._on_empty is not None:
            self._on_empty(self)

    async def _drop(self, participant: Participant) -> None:
        if participant.identity.role is Role.AGENT:
            if self.agent is participant:
                self.agent = None
                self.last_status = None
                self.capabilities = None
                self._end_tx("station_lost")
            if participant.target is not None:
                self.tx.remove(participant.target)
        else:
            if self.operators.get(participant.key) is participant:
                del self.operators[participant.key]
                if self.floor.holds(participant.key):
                    self._end_tx("link_lost")
            if participant.target is not None:
                self.rx.remove(participant.target)
        await participant.close()

    def _gone(self, participant: Participant) -> None:
        """The participant's peer connection failed or closed by itself."""
        task = asyncio.get_running_loop().create_task(self._drop_gone(participant))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- audio -----------------------------------------------------------------------------

    def _packet(self, participant: Participant, packet: RtpPacket) -> None:
        if participant is self.agent:
            self.rx.forward(packet)
        elif self.floor.holds(participant.key):
            self.tx.forward(packet)

    # -- data channel ----------------------------------------------------------------------

    def _channel_open(self, participant: Participant) -> None:
        if participant.identity.role is Role.OPERATOR:
            participant.send(self._floor_for(participant))
            if self.capabilities is not None:
                participant.send(protocol.encode(self.capabilities))
            if self.last_status is not None:
                participant.send(self.last_status)

    def _message(self, participant: Participant, data: str | bytes) -> None:
        if not participant.limiter.allow():
            now = time.monotonic()
            if now - participant.last_refusal >= 1.0:
                participant.last_refusal = now
                self._refuse(participant, ErrorCode.RATE_LIMITED, "too many messages", None)
            return
        try:
            if participant.identity.role is Role.AGENT:
                self._station_message(participant, data)
            else:
                self._operator_message(participant, data)
        except ProtocolError as exc:
            self.invalid_messages += 1
            self._refuse(participant, exc.code, exc.message, protocol.message_type(data))

    def _station_message(self, agent: Participant, data: str | bytes) -> None:
        message = protocol.decode_station_message(data)
        if isinstance(message, protocol.Capabilities):
            self.capabilities = message  # kept to refuse bad requests, and passed on
        if isinstance(message, protocol.TxStopped):
            logger.info("station %s released PTT by itself: %s", self.board_id, message.reason)
            self._end_tx(message.reason)
            return
        encoded = protocol.encode(message)
        if isinstance(message, protocol.Status):
            self.last_status = encoded
        for operator in self.operators.values():
            operator.send(encoded)

    def _operator_message(self, operator: Participant, data: str | bytes) -> None:
        message = protocol.decode_operator_message(data)
        identity = operator.identity
        if isinstance(message, protocol.Keepalive):
            if self.floor.holds(operator.key):
                self._keepalive()
            return  # a late keep-alive after release is harmless
        if not identity.can_transmit:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"{identity.callsign} may listen but not control this station"
            )
        agent = self.agent
        if agent is None or not agent.channel_open:  # a command now would be lost
            raise ProtocolError(ErrorCode.STATION_OFFLINE, "the station is offline")
        if isinstance(message, protocol.Ptt):
            if not message.state:
                if self.floor.holds(operator.key):
                    self._end_tx("released")
                return
            holder = self.floor.holder
            if holder is not None and holder.key == operator.key:
                self._keepalive()  # a repeated press refreshes the dead-man
                return
            if holder is not None:
                if not identity.is_owner:
                    raise ProtocolError(ErrorCode.FLOOR_BUSY, f"{holder.callsign} is transmitting")
                self._end_tx("override", by=identity.callsign)
            self._start_tx(operator, agent)
            return
        self._check_capabilities(message)
        agent.send(protocol.encode(message))

    def _check_capabilities(
        self, message: protocol.SetFrequency | protocol.SetMode | protocol.SetPower
    ) -> None:
        caps = self.capabilities
        if caps is None:
            return  # the station validates too
        if isinstance(message, protocol.SetFrequency) and not any(
            r.low <= message.value <= r.high for r in caps.freq_ranges
        ):
            ranges = ", ".join(f"{r.low / 1e6:g} to {r.high / 1e6:g} MHz" for r in caps.freq_ranges)
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"{message.value / 1e6:g} MHz is outside what the rig tunes ({ranges})",
            )
        if isinstance(message, protocol.SetMode) and message.value not in caps.modes:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"the rig has no mode {message.value} (it has {', '.join(caps.modes)})",
            )

    # -- transmit safety -------------------------------------------------------------------

    def _start_tx(self, operator: Participant, agent: Participant) -> None:
        identity = operator.identity
        holder = FloorHolder(
            key=operator.key,
            callsign=identity.callsign,
            user_id=identity.user_id,
            started_at=datetime.now(UTC),
        )
        self.floor.grant(holder)
        self.tx.new_source()
        agent.send(_KEY)
        loop = asyncio.get_running_loop()
        config = self._config
        self._deadman = loop.call_later(config.deadman_s, self._end_tx, "deadman")
        self._timeout = loop.call_later(config.tx_timeout_s, self._end_tx, "timeout")
        if 0 < config.tx_warning_s < config.tx_timeout_s:
            self._warning = loop.call_later(
                config.tx_timeout_s - config.tx_warning_s, self._warn, holder.key
            )
        logger.info("%s keyed station %s", identity.callsign, self.board_id)
        self._broadcast_floor()
        self._observer.tx_started(self.board_id, holder)

    def _keepalive(self) -> None:
        if self._deadman is not None:
            self._deadman.cancel()
        self._deadman = asyncio.get_running_loop().call_later(
            self._config.deadman_s, self._end_tx, "deadman"
        )
        if self.agent is not None:
            self.agent.send(_KEEPALIVE)

    def _warn(self, key: str) -> None:
        holder = self.operators.get(key)
        if holder is not None and self.floor.holds(key):
            remaining = round(self._config.tx_warning_s)
            holder.send(protocol.encode(protocol.TxWarning(remaining_s=remaining)))

    def _end_tx(self, reason: protocol.TxEndReason, by: str | None = None) -> None:
        """End the current transmission, if any: PTT off at the station, everyone told."""
        for timer in (self._deadman, self._timeout, self._warning):
            if timer is not None:
                timer.cancel()
        self._deadman = self._timeout = self._warning = None
        holder = self.floor.release()
        if holder is None:
            return
        if self.agent is not None:
            self.agent.send(_RELEASE)
        logger.info("%s's transmission on %s ended: %s", holder.callsign, self.board_id, reason)
        former = self.operators.get(holder.key)
        if former is not None and reason != "released":
            former.send(protocol.encode(protocol.PttReleased(reason=reason, by=by)))
        self._broadcast_floor()
        self._observer.tx_ended(self.board_id, holder, reason)

    def _floor_for(self, operator: Participant) -> bytes:
        holder = self.floor.holder
        if holder is None:
            return protocol.encode(protocol.Floor(holder=None))
        you = holder.key == operator.key
        return protocol.encode(protocol.Floor(holder=holder.callsign, you=you))

    def _broadcast_floor(self) -> None:
        for operator in self.operators.values():
            operator.send(self._floor_for(operator))

    def _refuse(
        self, participant: Participant, code: ErrorCode, message: str, ref: str | None
    ) -> None:
        logger.info("refused a message from %s: %s", participant.key, message)
        participant.send(protocol.encode(protocol.Error(code=code, message=message, ref=ref)))

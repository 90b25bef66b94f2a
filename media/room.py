"""A station's room: its agent, its operators, audio both ways, data-channel routing, floor."""

from __future__ import annotations

import asyncio
import logging
import time

from aiortc.rtp import RtpPacket

from media.config import SfuConfig
from media.floor import FloorControl
from media.forwarder import LatencyRecorder, RtpFanout
from media.participant import Participant, ParticipantIdentity, Role
from signaling import protocol
from signaling.protocol import ErrorCode, ProtocolError

logger = logging.getLogger(__name__)

_RELEASE = protocol.encode(protocol.Ptt(state=False))


class Room:
    """Everything the SFU knows about one board (station).

    RX: the agent's audio is forwarded to every operator with a receiving m-line.
    TX: an operator's audio is forwarded to the agent only while that operator holds the floor.
    Control messages from operators are validated and, where allowed, forwarded to the agent;
    station messages are validated and forwarded to every operator.
    """

    def __init__(self, board_id: str, config: SfuConfig, latency: LatencyRecorder | None) -> None:
        self.board_id = board_id
        self._config = config
        self.agent: Participant | None = None
        self.operators: dict[str, Participant] = {}
        #: Participants whose offer is being negotiated (trickled candidates find them here).
        self.negotiating: dict[str, Participant] = {}
        self.rx = RtpFanout(latency=latency)
        self.tx = RtpFanout()
        self.floor = FloorControl()
        self.last_status: bytes | None = None
        self.invalid_messages = 0
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def empty(self) -> bool:
        return self.agent is None and not self.operators and not self.negotiating

    def participant(self, key: str) -> Participant | None:
        current = self.agent if key == "agent" else self.operators.get(key)
        return self.negotiating.get(key) or current

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
            await self._drop(previous, replaced=True)

    async def remove(self, key: str) -> None:
        participant = self.agent if key == "agent" else self.operators.get(key)
        if participant is not None:
            await self._drop(participant, replaced=False)

    async def close(self) -> None:
        for participant in [*self.operators.values(), *([self.agent] if self.agent else [])]:
            await self._drop(participant, replaced=False)
        for task in list(self._closing):
            await task

    async def _drop(self, participant: Participant, *, replaced: bool) -> None:
        if participant.identity.role is Role.AGENT:
            if self.agent is participant:
                self.agent = None
                self.last_status = None
                holder = self.floor.holder
                if holder is not None and not replaced:
                    self.floor.release(holder.key)
                    self._broadcast_floor()
            if participant.target is not None:
                self.tx.remove(participant.target)
        else:
            if self.operators.get(participant.key) is participant:
                del self.operators[participant.key]
                if self.floor.holds(participant.key):
                    self._release(participant.key)
            if participant.target is not None:
                self.rx.remove(participant.target)
        await participant.close()

    def _gone(self, participant: Participant) -> None:
        """The participant's peer connection failed or closed by itself."""
        task = asyncio.get_running_loop().create_task(self._drop(participant, replaced=False))
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
            holder = self.floor.holder
            participant.send(
                protocol.encode(protocol.Floor(holder=holder.callsign if holder else None))
            )
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
        encoded = protocol.encode(message)
        if isinstance(message, protocol.Status):
            self.last_status = encoded
        for operator in self.operators.values():
            operator.send(encoded)

    def _operator_message(self, operator: Participant, data: str | bytes) -> None:
        message = protocol.decode_operator_message(data)
        kind = message.__struct_config__.tag
        identity = operator.identity
        if not identity.can_transmit:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"{identity.callsign} may not control this station"
            )
        agent = self.agent
        if agent is None:
            raise ProtocolError(ErrorCode.STATION_OFFLINE, "the station is offline")
        if isinstance(message, protocol.Ptt):
            if message.state:
                holder = self.floor.request(operator.key, identity.callsign)
                if holder is not None:
                    raise ProtocolError(ErrorCode.FLOOR_BUSY, f"{holder.callsign} is transmitting")
                self.tx.new_source()
                agent.send(protocol.encode(message))
                self._broadcast_floor()
            elif self.floor.holds(operator.key):
                self._release(operator.key)
            return
        logger.debug("forwarding %s from %s", kind, identity.callsign)
        agent.send(protocol.encode(message))

    def _release(self, key: str) -> None:
        self.floor.release(key)
        if self.agent is not None:
            self.agent.send(_RELEASE)
        self._broadcast_floor()

    def _broadcast_floor(self) -> None:
        holder = self.floor.holder
        message = protocol.encode(protocol.Floor(holder=holder.callsign if holder else None))
        for operator in self.operators.values():
            operator.send(message)

    def _refuse(
        self, participant: Participant, code: ErrorCode, message: str, ref: str | None
    ) -> None:
        logger.info("refused a message from %s: %s", participant.key, message)
        participant.send(protocol.encode(protocol.Error(code=code, message=message, ref=ref)))

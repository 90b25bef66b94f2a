"""A station's room: its agent, its operators, audio both ways, data-channel routing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from aiortc.rtp import RtpPacket

import radiocore_protocol as protocol
from media.config import IceServerSpec, SfuConfig
from media.floor import FloorObserver, FloorPolicy
from media.forwarder import LatencyRecorder, RtpFanout
from media.participant import AGENT_KEY, Participant, ParticipantIdentity, Role
from radiocore_protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from media.sfu import StationObserver

logger = logging.getLogger(__name__)


class Room:
    """Everything the SFU knows about one board (station).

    RX: the agent's audio is forwarded to every operator with a receiving m-line.
    TX: an operator's audio is forwarded to the agent only while that operator holds the floor.
    Control messages from operators are validated; PTT and keep-alives go to the floor policy
    (`self.floor`, which decides everything about transmitting and reaches the station and the
    operators through this room, its `FloorRoom`); other commands are forwarded to the agent.
    Station messages are validated and forwarded to every operator.

    The roster (who is on the station, who transmits, who asks to talk: `floor_request`) goes
    to each operator when its control channel opens, and to all of them after each change,
    coalesced to one message per `config.roster_interval_s`.

    The station is online while the agent is in the room and its control channel is open (its
    media is up and it can take commands); the station observer is told of each change.
    """

    def __init__(
        self,
        board_id: str,
        config: SfuConfig,
        latency: LatencyRecorder | None,
        *,
        station_observer: StationObserver,
        floor_observer: FloorObserver | None = None,
        on_empty: Callable[[Room], None] | None = None,
    ) -> None:
        self.board_id = board_id
        self._config = config
        self._station_observer = station_observer
        self._on_empty = on_empty
        self.agent: Participant | None = None
        self.operators: dict[str, Participant] = {}
        #: Other nodes' relays of this station (`media.relay`), by key.
        self.relays: dict[str, Participant] = {}
        #: The listeners each relay says it serves (`relay_listeners`), in the roster's count.
        self._relayed_listeners: dict[str, int] = {}
        #: Participants whose offer is being negotiated (trickled candidates find them here).
        self.negotiating: dict[str, Participant] = {}
        self.rx = RtpFanout(latency=latency)
        self.tx = RtpFanout()
        self.floor = FloorPolicy(board_id, config, self, floor_observer)
        self.capabilities: protocol.Capabilities | None = None
        self.last_status: bytes | None = None
        self.invalid_messages = 0
        #: Why an operator's transmit right was withdrawn during its session, by key (told
        #: when it tries to key or tune again).
        self._withdrawn: dict[str, str] = {}
        self._station_up = False
        self._closing: set[asyncio.Task[None]] = set()
        #: Operators asking to talk (`floor_request`), by key, in the order they asked.
        self._waiting: dict[str, None] = {}
        self._roster: bytes | None = None  # the encoded roster, until something changes
        self._roster_timer: asyncio.TimerHandle | None = None
        self._roster_sent_at = -float("inf")
        #: Rosters sent to every operator (each counted once however many operators got it).
        self.roster_broadcasts = 0

    @property
    def empty(self) -> bool:
        return (
            self.agent is None and not self.operators and not self.relays and not self.negotiating
        )

    def participant(self, key: str) -> Participant | None:
        """The participant `key`, its negotiating session first (trickled candidates)."""
        return self.negotiating.get(key) or self._admitted(key)

    def _admitted(self, key: str) -> Participant | None:
        if key == AGENT_KEY:
            return self.agent
        return self.operators.get(key) or self.relays.get(key)

    @property
    def station_online(self) -> bool:
        """The agent is in the room and its control channel opened (the observer was told)."""
        return self._station_up

    def _station_changed(self) -> None:
        up = self.agent is not None and self.agent.channel_open
        if up == self._station_up:
            return
        self._station_up = up
        if up:
            logger.debug("station %s is online", self.board_id)  # signaling logs it
            self._station_observer.station_up(self.board_id)
        else:
            logger.debug("station %s is offline", self.board_id)
            self._station_observer.station_down(self.board_id)

    def new_participant(
        self, identity: ParticipantIdentity, ice_servers: Sequence[IceServerSpec]
    ) -> Participant:
        return Participant(
            identity,
            self._config,
            on_packet=self._packet,
            on_message=self._message,
            on_channel_open=self._channel_open,
            on_gone=self._gone,
            ice_servers=ice_servers,
        )

    def finish_negotiation(self, participant: Participant) -> None:
        if self.negotiating.get(participant.key) is participant:
            del self.negotiating[participant.key]

    async def admit(self, participant: Participant) -> None:
        """Make a negotiated participant part of the room, replacing its previous session."""
        if participant.identity.role is Role.AGENT:
            previous = self.agent
            if previous is not None:
                # the old session is closed below, so its own link loss unkeys it; the new
                # session starts unkeyed
                self.agent = None
                self.floor.end("station_lost")
                self.capabilities = None
            self.agent = participant
            self._station_changed()
            self.rx.new_source()
            if participant.target is not None:
                self.tx.add(participant.target)
        elif participant.identity.role is Role.RELAY:
            previous = self.relays.get(participant.key)
            self.relays[participant.key] = participant
            if participant.target is not None:
                self.rx.add(participant.target)
        else:
            previous = self.operators.get(participant.key)
            self.operators[participant.key] = participant
            self._withdrawn.pop(participant.key, None)  # admitted anew: its rights are fresh
            if participant.target is not None:
                self.rx.add(participant.target)
            self._roster_changed()
        if previous is not None and previous is not participant:
            await self._drop(previous)

    def data_pending(self) -> bool:
        """Whether a data channel of this room still holds messages not handed to the network."""
        return any(p.buffered_bytes > 0 for p in self._everyone())

    def _everyone(self) -> list[Participant]:
        """Every admitted participant: operators, relays, the agent."""
        agent = [self.agent] if self.agent is not None else []
        return [*self.operators.values(), *self.relays.values(), *agent]

    async def remove(self, key: str) -> None:
        participant = self._admitted(key)
        if participant is not None:
            await self._drop(participant)

    async def close(self) -> None:
        if self._roster_timer is not None:
            self._roster_timer.cancel()
            self._roster_timer = None
        for participant in self._everyone():
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
                self.agent = None  # its peer connection closes: its own link loss unkeys it
                self.last_status = None
                self.capabilities = None
                self._station_changed()
                self.floor.end("station_lost")
            if participant.target is not None:
                self.tx.remove(participant.target)
        elif participant.identity.role is Role.RELAY:
            if self.relays.get(participant.key) is participant:
                del self.relays[participant.key]
                if self._relayed_listeners.pop(participant.key, 0):
                    self._roster_changed()
            if participant.target is not None:
                self.rx.remove(participant.target)
        else:
            if self.operators.get(participant.key) is participant:
                del self.operators[participant.key]
                self._withdrawn.pop(participant.key, None)
                self._waiting.pop(participant.key, None)
                self.floor.left(participant.key)
                self._roster_changed()
            if participant.target is not None:
                self.rx.remove(participant.target)
        await participant.close()

    def withdraw_transmit(self, key: str, reason: str) -> bool:
        """The operator `key` may no longer transmit (signaling re-checked its access): its
        transmission, if any, ends now (`ptt_released` `access_ended`), and its later presses
        and tuning are refused with `forbidden` and `reason`. True when it held the floor."""
        operator = self.operators.get(key)
        if operator is None:
            return False
        identity = operator.identity
        if identity.can_transmit or identity.is_owner:
            operator.identity = dataclasses.replace(identity, can_transmit=False, is_owner=False)
        self._withdrawn[key] = reason
        if key in self._waiting:
            del self._waiting[key]
            self._roster_changed()
        return self.floor.revoke(key)

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
        if participant.identity.role is not Role.AGENT:  # an operator or a relay
            participant.send(self.floor.floor_for(participant.key))
            participant.send(self._roster_message())
            if self.capabilities is not None:
                participant.send(protocol.encode(self.capabilities))
            if self.last_status is not None:
                participant.send(self.last_status)
        elif participant is self.agent:
            self._station_changed()

    def _message(self, participant: Participant, data: str | bytes) -> None:
        if not participant.limiter.allow():
            now = time.monotonic()
            if now - participant.last_refusal >= 1.0:
                participant.last_refusal = now
                self._refuse(participant, ErrorCode.RATE_LIMITED, "too many messages", None)
            return
        raw = data.encode() if isinstance(data, str) else data
        limit = self._config.max_data_message_bytes
        if len(raw) > limit:  # not even parsed
            self.invalid_messages += 1
            message = f"message of {len(raw)} bytes is over the {limit}-byte limit"
            self._refuse(participant, ErrorCode.TOO_LARGE, message, None)
            return
        try:
            if participant.identity.role is Role.AGENT:
                self._station_message(raw)
            elif participant.identity.role is Role.RELAY:
                self._relay_message(participant, raw)
            else:
                self._operator_message(participant, raw)
        except ProtocolError as exc:
            self.invalid_messages += 1
            self._refuse(participant, exc.code, exc.message, protocol.message_type(raw))

    def _station_message(self, data: bytes) -> None:
        message = protocol.decode_station_message(data)
        if isinstance(message, protocol.Capabilities):
            self.capabilities = message  # kept to refuse bad requests, and passed on
        if isinstance(message, protocol.TxStopped):
            logger.info("station %s released PTT by itself: %s", self.board_id, message.reason)
            self.floor.end(message.reason)
            return
        encoded = protocol.encode(message)
        if isinstance(message, protocol.Status):
            self.last_status = encoded
        for operator in self.operators.values():
            operator.send(encoded)
        for relay in self.relays.values():
            relay.send(encoded)

    def _relay_message(self, relay: Participant, data: bytes) -> None:
        """A relay says how many listeners it serves (it passes nothing else on: its listeners
        only listen)."""
        count = protocol.decode_relay_message(data).count
        if self._relayed_listeners.get(relay.key, 0) != count:
            self._relayed_listeners[relay.key] = count
            self._roster_changed()

    def _operator_message(self, operator: Participant, data: bytes) -> None:
        message = protocol.decode_operator_message(data)
        if isinstance(message, protocol.Keepalive):
            self.floor.keepalive(operator.key)
            return
        if isinstance(message, protocol.Ptt):
            if not message.state:
                self.floor.release(operator.key)
                return
            self._check_withdrawn(operator)
            if self.floor.press(operator.identity):
                self.tx.new_source()
            return
        if isinstance(message, protocol.FloorRequest):
            self._floor_request(operator, message.state)
            return
        identity = operator.identity
        self._check_withdrawn(operator)
        if not identity.can_transmit:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"{identity.callsign} may listen but not control this station"
            )
        agent = self.agent
        if agent is None or not agent.channel_open:  # a command now would be lost
            raise ProtocolError(ErrorCode.STATION_OFFLINE, "the station is offline")
        self._check_capabilities(message)
        if not agent.send(protocol.encode(message)):
            raise ProtocolError(
                ErrorCode.STATION_OFFLINE, "the station cannot be reached now; nothing was sent"
            )

    # -- roster: who is on the station, who asks to talk --------------------------------------

    def _floor_request(self, operator: Participant, waiting: bool) -> None:
        self._check_withdrawn(operator)
        identity = operator.identity
        if not identity.can_transmit:
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                f"{identity.callsign} may listen but not transmit on this station, "
                "so cannot ask to talk",
            )
        key = operator.key
        waiting = waiting and not self.floor.holds(key)  # the holder has nothing to wait for
        if waiting == (key in self._waiting):
            return  # no change: nothing to tell anyone
        if waiting:
            self._waiting[key] = None
        else:
            del self._waiting[key]
        self._roster_changed()

    def waiting(self) -> tuple[str, ...]:
        """The keys of the operators asking to talk, in the order they asked."""
        return tuple(self._waiting)

    def _roster_message(self) -> bytes:
        """The encoded `roster` as it is now (kept until something changes)."""
        if self._roster is None:
            holder = self.floor.holder
            entries = [
                protocol.RosterEntry(
                    callsign=operator.identity.callsign[:32],
                    transmitting=holder is not None and holder.key == key,
                    waiting=key in self._waiting,
                )
                for key, operator in self.operators.items()
            ]
            listed = entries
            limit = protocol.MAX_ROSTER_LISTENERS
            if len(entries) > limit:  # the holder and those waiting first, in join order
                order = sorted(
                    range(len(entries)),
                    key=lambda i: (not (entries[i].transmitting or entries[i].waiting), i),
                )
                listed = [entries[i] for i in sorted(order[:limit])]
            self._roster = protocol.encode(
                protocol.Roster(
                    listeners=listed,
                    count=len(entries) + sum(self._relayed_listeners.values()),
                    holder=holder.callsign[:32] if holder is not None else None,
                )
            )
        return self._roster

    def _roster_changed(self) -> None:
        """Someone joined or left, the floor or a request changed: send the roster to every
        operator soon, once for all the changes of the next `roster_interval_s`."""
        self._roster = None
        if self._roster_timer is not None:
            return  # already due
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._roster_sent_at + self._config.roster_interval_s - loop.time())
        self._roster_timer = loop.call_later(delay, self._broadcast_roster)

    def _broadcast_roster(self) -> None:
        self._roster_timer = None
        self._roster_sent_at = asyncio.get_running_loop().time()
        if not self.operators and not self.relays:
            return
        self.roster_broadcasts += 1
        data = self._roster_message()
        for operator in self.operators.values():
            operator.send(data)
        for relay in self.relays.values():
            relay.send(data)

    def _check_withdrawn(self, operator: Participant) -> None:
        reason = self._withdrawn.get(operator.key)
        if reason is not None and not operator.identity.can_transmit:
            raise ProtocolError(ErrorCode.FORBIDDEN, reason)

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

    def _refuse(
        self, participant: Participant, code: ErrorCode, message: str, ref: str | None
    ) -> None:
        logger.info("refused a message from %s: %s", participant.key, message)
        participant.send(protocol.encode(protocol.Error(code=code, message=message, ref=ref)))

    # -- FloorRoom: how the floor policy reaches the station and the operators -------------

    def station_ready(self) -> bool:
        agent = self.agent
        return self._station_up and agent is not None and agent.keeps_up

    def send_to_station(self, data: bytes, *, despite_backlog: bool = False) -> bool:
        agent = self.agent
        return agent is not None and agent.send(data, despite_backlog=despite_backlog)

    def release_station(self, release: bytes, key: bytes) -> None:
        agent = self.agent
        if agent is None or agent.send_ahead(release, behind=key):
            return
        logger.warning(
            "PTT off cannot be sent to station %s: dropping it, so its own link loss unkeys it",
            self.board_id,
        )
        self._gone(agent)

    def send_to_operator(self, key: str, data: bytes) -> None:
        operator = self.operators.get(key)
        if operator is not None:
            operator.send(data)

    def operator_keys(self) -> Iterable[str]:
        return tuple(self.operators)

    def floor_changed(self) -> None:
        if self.relays:  # what the relays' listeners see: the holder, never themselves
            data = self.floor.floor_for(AGENT_KEY)
            for relay in self.relays.values():
                relay.send(data)
        holder = self.floor.holder
        if holder is not None:
            self._waiting.pop(holder.key, None)  # granted: no longer waiting
        self._roster_changed()

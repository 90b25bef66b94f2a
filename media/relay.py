"""Cascaded rooms (issue 11): a station's listeners served by a node that is not the station's.

A station's room lives on its home node (the node its agent is connected to), the one authority
for its floor, PTT and control. Listen-only operators connected to another node are served by a
`RelayRoom` there: that node holds **one** relay connection (`RelayUplink`, an aiortc peer
connection it offers to the home node, which admits it as a participant of role `RELAY`) and
forwards the station's Opus packets it receives to its own listeners exactly as the home node
forwards the agent's (payload bytes unchanged; each listener its own SSRC, sequence numbers and
timestamps, SRTP). What the home node tells its operators over the data channel (`status`,
`capabilities`, `floor`, `roster`, …) reaches the relay and is passed on to each relayed
listener unchanged; the last of each kind is kept for a listener that joins later.

So a station heard by a thousand listeners spread over several nodes costs its home node one
stream per node, not one per listener.

A relayed listener may only listen (operators who may transmit are placed on the home node): its
control messages other than keep-alives are refused with `forbidden`. When the relay connection
is lost (the home node died, the station moved), every relayed listener's media ends with
`media_failed` saying so, and its console joins again wherever the station is now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiortc import RTCDataChannel, RTCSessionDescription
from aiortc.rtp import RtpPacket

import radiocore_protocol as protocol
from media.config import IceServerSpec, SfuConfig
from media.errors import StationOfflineError
from media.forwarder import LatencyRecorder, RtpFanout
from media.participant import (
    Participant,
    ParticipantIdentity,
    host_candidate_policy,
    negotiated_opus,
    rtc_configuration,
)
from radiocore import aiortc_hooks
from radiocore_protocol import CONTROL_CHANNEL_LABEL, ErrorCode, ProtocolError

logger = logging.getLogger(__name__)

#: Sends the relay's offer to the station's home node and returns its answer (raises
#: `StationOfflineError` or `ProtocolError` when the home node refuses).
OpenUpstream = Callable[[str], Awaitable[str]]

#: The messages from the home node kept for a relayed listener that joins later, in the order a
#: listener of the home node gets them when its channel opens.
_KEPT = ("floor", "roster", "capabilities", "status")

#: What a relayed listener's media failure says when the relay connection is lost.
UPSTREAM_LOST = (
    "the connection between this server node and the station's node was lost (the station may "
    "have moved to another node): join again"
)


class RelayUplink:
    """This node's one connection to the station's home node, as a listen-only participant."""

    def __init__(
        self,
        config: SfuConfig,
        ice_servers: Sequence[IceServerSpec],
        on_packet: Callable[[RtpPacket], None],
        on_message: Callable[[bytes], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._config = config
        self._on_packet = on_packet
        self._on_message = on_message
        self._on_lost = on_lost
        self.pc = aiortc_hooks.server_peer_connection(rtc_configuration(ice_servers))
        self._opus_payload_type = -1
        self._channel: RTCDataChannel | None = None
        self._open = asyncio.Event()
        self._closed = False
        self.packets = 0

    async def connect(self, open_upstream: OpenUpstream) -> None:
        """Offer, have the home node answer (`open_upstream`), and wait until the control
        channel opens (bounded by `ice_connect_timeout_s`); `StationOfflineError` otherwise."""
        transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        channel = self._channel = self.pc.createDataChannel(CONTROL_CHANNEL_LABEL)
        channel.on("open", self._open.set)
        channel.on("message", self._message)
        channel.on("close", self._lost)
        self.pc.on("connectionstatechange", self._state_changed)
        # the relay's host candidates obey the media port range, like every SFU connection
        aiortc_hooks.set_host_candidate_policy(self.pc, host_candidate_policy(self._config))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await open_upstream(str(self.pc.localDescription.sdp))
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except Exception as exc:  # aiortc raises many types for a bad SDP
            why = f"the station's node answered the relay badly: {exc}"
            raise StationOfflineError(why) from exc
        opus = negotiated_opus(transceiver)
        if opus is None:
            raise StationOfflineError("the station's node answered the relay without Opus")
        self._opus_payload_type = opus.payloadType
        aiortc_hooks.tap_receiver(transceiver.receiver, self._packet)
        bound = self._config.ice_connect_timeout_s
        try:
            await asyncio.wait_for(self._open.wait(), bound)
        except TimeoutError:
            raise StationOfflineError(
                f"no connection to the station's node within {bound:g} s (are the nodes' media "
                "ports reachable from each other?)"
            ) from None

    @property
    def up(self) -> bool:
        return self._open.is_set() and not self._closed

    def send(self, data: bytes) -> None:
        """A message to the station's node, once the channel is open (dropped before)."""
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(data.decode())

    def _packet(self, packet: RtpPacket) -> None:
        if packet.payload_type == self._opus_payload_type:
            self.packets += 1
            self._on_packet(packet)

    def _message(self, message: str | bytes) -> None:
        self._on_message(message.encode() if isinstance(message, str) else message)

    async def _state_changed(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._lost()

    def _lost(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_lost()

    async def close(self) -> None:
        self._closed = True
        await self.pc.close()


class RelayRoom:
    """A station's listeners on this node, fed by one `RelayUplink` (see the module docstring).

    Its interface is the part of `media.room.Room` that the SFU and signaling use for operators
    (`operators`, `negotiating`, `participant()`, `admit()`, `remove()`, `withdraw_transmit()`)."""

    def __init__(
        self,
        board_id: str,
        config: SfuConfig,
        latency: LatencyRecorder | None,
        open_upstream: OpenUpstream,
        on_empty: Callable[[RelayRoom], None],
        source: str = "",
    ) -> None:
        self.board_id = board_id
        #: The station's node, which the relay connects to.
        self.source = source
        self._config = config
        self._open_upstream = open_upstream
        self._on_empty = on_empty
        self.operators: dict[str, Participant] = {}
        self.negotiating: dict[str, Participant] = {}
        self.rx = RtpFanout(latency=latency)
        self.invalid_messages = 0
        self._uplink: RelayUplink | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._kept: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended = False

    @property
    def empty(self) -> bool:
        return not self.operators and not self.negotiating

    @property
    def ended(self) -> bool:
        """The relay was lost or closed: the room closes and takes no new listener."""
        return self._ended

    @property
    def upstream_up(self) -> bool:
        return self._uplink is not None and self._uplink.up

    async def upstream(self, ice_servers: Sequence[IceServerSpec]) -> None:
        """Connect the relay to the station's node unless it is up (one attempt shared by the
        listeners joining meanwhile); `StationOfflineError` when that fails."""
        if self._ended:
            raise StationOfflineError(UPSTREAM_LOST)
        if self.upstream_up:
            return
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect(ice_servers))
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self, ice_servers: Sequence[IceServerSpec]) -> None:
        uplink = RelayUplink(
            self._config, ice_servers, self._packet, self._upstream_message, self.upstream_lost
        )
        self._uplink = uplink
        self.rx.new_source()
        started = time.monotonic()
        try:
            await uplink.connect(self._open_upstream)
        except BaseException:
            self._uplink = None
            await uplink.close()
            raise
        self._count_changed()
        logger.info(
            "relay for station %s connected to its node in %.0f ms",
            self.board_id,
            (time.monotonic() - started) * 1000,
            extra={"board_id": self.board_id},
        )

    def new_participant(
        self, identity: ParticipantIdentity, ice_servers: Sequence[IceServerSpec]
    ) -> Participant:
        return Participant(
            identity,
            self._config,
            on_packet=lambda participant, packet: None,  # a relayed listener never transmits
            on_message=self._message,
            on_channel_open=self._channel_open,
            on_gone=self._gone,
            ice_servers=ice_servers,
        )

    def participant(self, key: str) -> Participant | None:
        return self.negotiating.get(key) or self.operators.get(key)

    def finish_negotiation(self, participant: Participant) -> None:
        if self.negotiating.get(participant.key) is participant:
            del self.negotiating[participant.key]

    async def admit(self, participant: Participant) -> None:
        previous = self.operators.get(participant.key)
        self.operators[participant.key] = participant
        if participant.target is not None:
            self.rx.add(participant.target)
        if previous is not None and previous is not participant:
            await self._drop(previous)
        self._count_changed()

    def _count_changed(self) -> None:
        """Tell the station's node how many listeners this relay serves (its roster counts
        them)."""
        if self._uplink is not None:
            self._uplink.send(protocol.encode(protocol.RelayListeners(count=len(self.operators))))

    async def remove(self, key: str) -> None:
        participant = self.operators.get(key)
        if participant is not None:
            await self._drop(participant)
        await self._close_if_empty()

    def withdraw_transmit(self, key: str, reason: str) -> bool:
        """A relayed listener never transmits: nothing to withdraw (see `Room`)."""
        return False

    def data_pending(self) -> bool:
        return any(p.buffered_bytes > 0 for p in self.operators.values())

    async def _drop(self, participant: Participant) -> None:
        if self.operators.get(participant.key) is participant:
            del self.operators[participant.key]
            self._count_changed()
        if participant.target is not None:
            self.rx.remove(participant.target)
        await participant.close()

    async def _close_if_empty(self) -> None:
        if self.empty and not self._ended:
            await self.close()

    async def close(self) -> None:
        """Close the relay connection and every relayed listener's."""
        self._ended = True
        for participant in list(self.operators.values()):
            await self._drop(participant)
        uplink, self._uplink = self._uplink, None
        if uplink is not None:
            await uplink.close()
            logger.info("relay for station %s closed", self.board_id)
        self._on_empty(self)

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _gone(self, participant: Participant) -> None:
        async def drop() -> None:
            await self._drop(participant)
            await self._close_if_empty()

        self._spawn(drop())

    # -- from the station's node -------------------------------------------------------------

    def _packet(self, packet: RtpPacket) -> None:
        self.rx.forward(packet)

    def _upstream_message(self, data: bytes) -> None:
        kind = protocol.message_type(data)
        if kind == "error":  # meant for the relay itself
            logger.info("the station's node refused a relay message: %s", data[:200])
            return
        if kind in _KEPT:
            self._kept[kind] = data
        for operator in self.operators.values():
            operator.send(data)

    def upstream_lost(self) -> None:
        """The relay connection is lost (or useless: the station moved): every relayed
        listener's media fails (`media_failed`, saying so) and the room closes."""
        if self._ended:
            return
        logger.warning(
            "relay for station %s lost its connection to the station's node; its %d listener(s) "
            "are told to join again",
            self.board_id,
            len(self.operators),
            extra={"board_id": self.board_id},
        )
        for participant in [*self.operators.values(), *self.negotiating.values()]:
            participant.report_media_failure("ice", UPSTREAM_LOST)
        self._spawn(self.close())

    # -- from the relayed listeners ----------------------------------------------------------

    def _channel_open(self, participant: Participant) -> None:
        for kind in _KEPT:
            data = self._kept.get(kind)
            if data is not None:
                participant.send(data)

    def _message(self, participant: Participant, data: str | bytes) -> None:
        if not participant.limiter.allow():
            return  # a listener has nothing to say that cannot wait
        raw = data.encode() if isinstance(data, str) else data
        limit = self._config.max_data_message_bytes
        try:
            if len(raw) > limit:
                why = f"message of {len(raw)} bytes is over the {limit}-byte limit"
                raise ProtocolError(ErrorCode.TOO_LARGE, why)
            message = protocol.decode_operator_message(raw)
            if isinstance(message, protocol.Keepalive):
                return
            if isinstance(message, protocol.Ptt | protocol.FloorRequest) and not message.state:
                return  # releasing what it cannot hold: nothing to do
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                f"{participant.identity.callsign} may listen but not transmit on this station",
            )
        except ProtocolError as exc:
            self.invalid_messages += exc.code is not ErrorCode.FORBIDDEN
            now = time.monotonic()
            if now - participant.last_refusal < 0.2:
                return
            participant.last_refusal = now
            ref = protocol.message_type(raw)
            participant.send(
                protocol.encode(protocol.Error(code=exc.code, message=exc.message, ref=ref))
            )

"""One client's peer connection with the SFU: its audio in, its audio out, its data channel."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCDtlsTransport,
    RTCIceCandidate,
    RTCIceServer,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription, candidate_from_sdp

from media.config import IceServerSpec, SfuConfig
from media.errors import BadCandidateError, BadSdpError
from media.forwarder import ForwardTarget
from media.lane import lane_named
from media.ratelimit import RateLimiter
from radiocore import aiortc_hooks
from radiocore_protocol import CONTROL_CHANNEL_LABEL, MediaFailureReason

logger = logging.getLogger(__name__)

#: A backed-up data channel's dropped messages are logged at most this often (with a count).
DROP_LOG_INTERVAL_S = 1.0

#: The participant key of a room's board agent (operators are keyed by their connection).
AGENT_KEY = "agent"


class Role(enum.Enum):
    AGENT = "agent"
    OPERATOR = "operator"
    #: Another node's relay of this station to its own listeners (`media.relay`): hears the
    #: station and what its operators are told, never transmits, is not in the roster.
    RELAY = "relay"


@dataclass(frozen=True)
class ParticipantIdentity:
    """Who is on the other end, as admission decided it."""

    key: str  # unique within the room
    role: Role
    callsign: str
    user_id: str | None = None
    can_transmit: bool = False
    is_owner: bool = False  # the owner may always take the floor (override)


class SilentTrack(MediaStreamTrack):
    """The track behind a forwarding sender: never yields a frame (the forwarder sends)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._stopped = asyncio.Event()

    async def recv(self) -> None:  # type: ignore[override]
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._stopped.set()
        super().stop()


def rtc_configuration(ice_servers: Sequence[IceServerSpec]) -> RTCConfiguration:
    """Always an explicit server list: `None` would make aiortc use a public STUN server."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in ice_servers
        ]
    )


def host_candidate_policy(config: SfuConfig) -> aiortc_hooks.HostCandidatePolicy:
    """Where the SFU's host candidates bind and what they announce."""
    return aiortc_hooks.HostCandidatePolicy(
        port_range=config.ice_port_range,
        announced_ipv4=config.ice_announced_address,
        shared_port=config.ice_udp_port,
    )


@dataclass(frozen=True)
class MediaFailure:
    """Why a participant's media failed for good, as its client is told (`media_failed`)."""

    reason: MediaFailureReason  # "ice" or "dtls"
    message: str


def bundle_as_offered(answer: str, offer: str) -> str:
    """The answer's `a=group:BUNDLE` as the offer allows it (RFC 8843): none when the offer
    has no BUNDLE group, else only the mids of the offer's first group (aiortc bundles by that
    one only), in its order. aiortc always answers one group with every m-line, while it
    shares a transport only between the m-lines the offer's group names."""
    offered: list[str] | None = None
    for line in offer.splitlines():
        if line.startswith("a=group:BUNDLE"):
            offered = line.removeprefix("a=group:BUNDLE").split()
            break
    lines = answer.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("a=group:BUNDLE"):
            answered = set(line.removeprefix("a=group:BUNDLE").split())
            kept = [mid for mid in offered or () if mid in answered]
            ending = line[len(line.rstrip("\r\n")) :]
            lines[index] = "a=group:BUNDLE " + " ".join(kept) + ending if kept else ""
            break
    return "".join(lines)


def _bundle_problem(sdp: str) -> str | None:
    """What is wrong with the offer's BUNDLE group as aiortc reads the offer, if anything.

    aiortc gives each bundled m-line the transport of the group's first mid, and none when no
    m-line it made a transport for has that mid (it makes one for audio and video m-lines and
    for the first application m-line only); such a peer connection fails even to close
    (AttributeError in aiortc). RFC 8843 also wants every mid of the group to be an m-line's.
    Found by `radiocore bench fuzz`."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception:  # aiortc raises many types; setRemoteDescription says which
        return None
    bundle = next((g for g in description.group if g.semantic == "BUNDLE"), None)
    if bundle is None or not bundle.items:
        return None
    media = description.media
    unknown = next((mid for mid in bundle.items if mid not in {m.rtp.muxId for m in media}), None)
    if unknown is not None:
        return f"names mid {str(unknown)[:32]!r}, which none of its m-lines has"
    applications = [m for m in media if m.kind == "application"]
    carried = {m.rtp.muxId for m in media if m.kind in ("audio", "video")}
    carried |= {m.rtp.muxId for m in applications[:1]}
    first = bundle.items[0]
    if first not in carried:
        kind = next(m.kind for m in media if m.rtp.muxId == first)
        return (
            f"starts with mid {str(first)[:32]!r}, an m-line the SFU does not take "
            f"({str(kind)[:32]!r})"
        )
    return None


def negotiated_opus(transceiver: RTCRtpTransceiver) -> Any | None:
    """The Opus codec negotiated for an audio transceiver (its payload type set), if any."""
    return next(
        (
            c
            for c in aiortc_hooks.negotiated_codecs(transceiver)
            if c.mimeType.lower() == "audio/opus" and c.payloadType is not None
        ),
        None,
    )


def _mids_of(sdp: str) -> tuple[str | None, ...]:
    """The mid of each m-line of an SDP, in order (None for an m-line without one)."""
    mids: list[str | None] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            mids.append(None)
        elif line.startswith("a=mid:") and mids:
            mids[-1] = line.removeprefix("a=mid:").strip()
    return tuple(mids)


class Participant:
    """A client's server-side peer connection; owns its pc, forward target and channel."""

    def __init__(
        self,
        identity: ParticipantIdentity,
        config: SfuConfig,
        on_packet: Callable[[Participant, RtpPacket], None],
        on_message: Callable[[Participant, str | bytes], None],
        on_channel_open: Callable[[Participant], None],
        on_gone: Callable[[Participant], None],
        ice_servers: Sequence[IceServerSpec] = (),
    ) -> None:
        """`ice_servers`: this connection's own (TURN credentials are issued per connection)."""
        self.identity = identity
        self._config = config
        self._on_packet = on_packet
        self._on_message = on_message
        self._on_channel_open = on_channel_open
        self._on_gone = on_gone
        self.pc = aiortc_hooks.server_peer_connection(rtc_configuration(ice_servers))
        self.channel: RTCDataChannel | None = None
        self.target: ForwardTarget | None = None
        self._opus_payload_type = -1
        self._early_candidates: list[RTCIceCandidate] = []
        self._offer_mids: tuple[str | None, ...] = ()  # one per m-line of the offer
        self._offer_applied = False
        self.limiter = RateLimiter(config.max_messages_per_second)
        self.last_refusal = 0.0
        self._dropped_messages = 0
        self._drop_logged_at = -DROP_LOG_INTERVAL_S
        self._closed = False
        self._connect_timer: asyncio.TimerHandle | None = None
        #: Told once when this connection's media fails for good (`report_media_failure`).
        self.on_media_failed: Callable[[Participant, MediaFailure], None] | None = None
        self.media_failure: MediaFailure | None = None
        self.pc.on("datachannel", self._datachannel)
        self.pc.on("connectionstatechange", self._state_changed)

    @property
    def key(self) -> str:
        return self.identity.key

    async def accept_offer(self, sdp: str) -> str:
        """Apply the client's offer and return the SFU's complete answer (all candidates)."""
        # before the first await: candidates trickled meanwhile are checked against it
        self._offer_mids = _mids_of(sdp)
        problem = _bundle_problem(sdp)
        if problem is not None:
            raise BadSdpError(f"the offer's a=group:BUNDLE {problem}")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises many types for a bad SDP
            reason = str(exc) or type(exc).__name__
            raise BadSdpError(f"the offer could not be applied: {reason}") from exc
        self._offer_applied = True
        for early in self._early_candidates:
            await self.pc.addIceCandidate(early)
        self._early_candidates.clear()
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if len(audio) != 1:
            raise BadSdpError(f"the offer must have exactly one audio m-line, it has {len(audio)}")
        if any(t.kind != "audio" for t in self.pc.getTransceivers()):
            raise BadSdpError("the offer may only have an audio m-line and the data channel")
        transceiver = audio[0]
        opus = negotiated_opus(transceiver)
        if opus is None:
            raise BadSdpError("the offer's audio m-line must offer Opus")
        self._opus_payload_type = opus.payloadType
        # aiortc keeps the offer's direction from our side: "recvonly" = the client sends
        ours = aiortc_hooks.offered_direction(transceiver)
        if ours in ("sendrecv", "recvonly"):
            aiortc_hooks.tap_receiver(transceiver.receiver, self._packet)
        if ours in ("sendrecv", "sendonly"):
            self.pc.addTrack(SilentTrack())
            self.target = ForwardTarget(
                transceiver,
                self._config.listener_queue_packets,
                opus.clockRate,
                self.key,
                lane_named(self._config.lane),
            )
        # the SFU's host candidates: in the media port range, announcing the public address
        aiortc_hooks.set_host_candidate_policy(self.pc, host_candidate_policy(self._config))
        try:
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:
            raise BadSdpError(f"no answer could be made for the offer: {exc}") from exc
        if self.pc.connectionState != "connected":
            self._connect_timer = asyncio.get_running_loop().call_later(
                self._config.ice_connect_timeout_s, self._connect_timed_out
            )
        return bundle_as_offered(self.pc.localDescription.sdp, sdp)

    async def add_candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None:
        """Apply a trickled candidate; `BadCandidateError` for one aiortc cannot parse or one
        that names no m-line of this connection's offer."""
        mids = self._offer_mids
        if index is not None and not 0 <= index < len(mids):
            raise BadCandidateError(
                f"sdpMLineIndex {index} names no m-line of the offer (it has {len(mids)})"
            )
        if sdp_mid is not None and sdp_mid not in mids:
            raise BadCandidateError(f"sdpMid {sdp_mid[:32]!r} names no m-line of the offer")
        text = candidate.removeprefix("candidate:").strip()
        if not text:
            return  # end-of-candidates: aiortc needs no signal for it
        try:
            parsed: RTCIceCandidate = candidate_from_sdp(text)
        except Exception as exc:  # aiortc asserts, and raises ValueError or IndexError
            reason = str(exc) or "not a candidate line"
            raise BadCandidateError(f"invalid ICE candidate: {reason}") from exc
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = index if index is not None or sdp_mid is not None else 0
        if not self._offer_applied:  # trickled while the offer is being applied
            if len(self._early_candidates) < self._config.max_early_candidates:
                self._early_candidates.append(parsed)
            return
        await self.pc.addIceCandidate(parsed)

    @property
    def channel_open(self) -> bool:
        return self.channel is not None and self.channel.readyState == "open"

    @property
    def keeps_up(self) -> bool:
        """A message sent now would be queued: the channel is open and not backed up."""
        channel = self.channel
        return (
            channel is not None
            and channel.readyState == "open"
            and channel.bufferedAmount <= self._config.max_buffered_data_bytes
        )

    @property
    def buffered_bytes(self) -> int:
        """Data-channel bytes sent but not yet handed to the network (0 without a channel)."""
        channel = self.channel
        return 0 if channel is None else int(channel.bufferedAmount)

    def send(self, data: bytes, *, despite_backlog: bool = False) -> bool:
        """Send a data-channel message; False when the channel is not open or (unless
        `despite_backlog`) backed up."""
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return False
        if not despite_backlog and channel.bufferedAmount > self._config.max_buffered_data_bytes:
            self._dropped_messages += 1
            now = time.monotonic()
            if now - self._drop_logged_at >= DROP_LOG_INTERVAL_S:  # one line, not one a message
                logger.warning(
                    "data channel to %s backed up; %d message(s) dropped since the last report",
                    self.key,
                    self._dropped_messages,
                )
                self._drop_logged_at = now
                self._dropped_messages = 0
            return False
        channel.send(data.decode())
        return True

    def send_ahead(self, data: bytes, behind: bytes) -> bool:
        """Send a message whatever the backlog, ahead of the messages waiting in it though
        never ahead of a waiting `behind`; False only when the channel is not open."""
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return False
        aiortc_hooks.send_ahead(channel, data.decode(), behind.decode())
        return True

    def _packet(self, packet: RtpPacket) -> None:
        if packet.payload_type == self._opus_payload_type:  # only Opus is ever forwarded
            self._on_packet(self, packet)

    def _datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CONTROL_CHANNEL_LABEL or self.channel is not None:
            logger.info("closing unexpected data channel %r from %s", channel.label, self.key)
            channel.close()
            return
        self.channel = channel
        channel.on("message", lambda message: self._on_message(self, message))
        # without its control channel a participant can neither key safely nor be told
        # anything: its session is over (a holder's transmission ends with "link_lost")
        channel.on("close", self._channel_closed)
        if channel.readyState == "open":
            self._on_channel_open(self)
        else:
            channel.on("open", lambda: self._on_channel_open(self))

    def _channel_closed(self) -> None:
        if not self._closed:
            self._on_gone(self)

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        if self._closed or self.pc.connectionState == "connected":
            return
        bound = self._config.ice_connect_timeout_s
        # media is up only once DTLS is connected: a path found (ICE completed) whose
        # handshake never finished is a DTLS failure, not a missing network path
        if any(
            dtls.transport.state == "completed" and dtls.state != "connected"
            for dtls in self._dtls_transports()
        ):
            self.report_media_failure(
                "dtls",
                f"a network path to the station's server was found (ICE succeeded), but the "
                f"DTLS handshake over it did not complete within {bound:g} s",
            )
        else:
            self.report_media_failure(
                "ice",
                f"no network path between you and the station's server within {bound:g} s: "
                "your network may block UDP, and no TURN relay reached the server (try "
                "another network, or relay-only)",
            )
        self._on_gone(self)

    async def _state_changed(self) -> None:
        state = self.pc.connectionState
        logger.debug("peer connection of %s is %s", self.key, state)
        if state in ("connected", "closed", "failed") and self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if state == "failed" and not self._closed:
            self._report_failed_transport()
        if state in ("failed", "closed") and not self._closed:
            self._on_gone(self)

    def report_media_failure(self, reason: MediaFailureReason, message: str) -> None:
        """This connection's media failed for good: log why at WARNING and tell the client
        (`on_media_failed`). Once per connection: the first report wins."""
        if self.media_failure is not None:
            logger.debug("media of %s failed again (%s): %s", self.key, reason, message)
            return
        self.media_failure = MediaFailure(reason, message)
        role, callsign = self.identity.role.value, self.identity.callsign
        logger.warning("media of %s %s failed (%s): %s", role, callsign, reason, message)
        if self.on_media_failed is not None:
            self.on_media_failed(self, self.media_failure)

    def _dtls_transports(self) -> list[RTCDtlsTransport]:
        """This connection's DTLS transports (one each when bundled), each over its ICE one."""
        transports = [t.receiver.transport for t in self.pc.getTransceivers()]
        if self.pc.sctp is not None:
            transports.append(self.pc.sctp.transport)
        return transports

    def _report_failed_transport(self) -> None:
        """The peer connection failed: say which transport, and why."""
        transports = self._dtls_transports()
        if any(dtls.transport.state == "failed" for dtls in transports):
            self.report_media_failure(
                "ice", "no network path to the server's media was found (ICE failed)"
            )
            return
        for dtls in transports:
            if dtls.state == "failed":
                why = aiortc_hooks.dtls_failure(dtls)
                self.report_media_failure("dtls", f"the DTLS handshake failed: {why}")
                return

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self.target is not None:
            self.target.close()
        await self.pc.close()

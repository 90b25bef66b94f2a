"""Every touch of aiortc/aioice private state, in one place.

The SFU (`media`) and the board agent both run on aiortc, and both need a few things aiortc has
no public API for. Every access to aiortc/aioice private state in the project is in this module,
which imports only aiortc/aioice (the agent imports it on a Raspberry Pi). The SFU forwards Opus
RTP packets without decoding them (aiortc's own receiver always decodes and its sender always
encodes). That needs these hooks into aiortc 1.16.0 / aioice 0.13.0, pinned exactly in
setup.cfg:

1. Receive side: shadow `RTCRtpReceiver._handle_rtp_packet` on the instance (called after SRTP
   decryption) so packets are forwarded first, then handed to the original so RTCP receiver
   reports keep flowing; replace the receiver's jitter buffer with one that keeps nothing, so
   the idle decoder never sees a frame and nothing piles up.
2. Send side ("direct path"): the forwarder writes each listener's RTP header itself, protects
   it with that listener's SRTP context and sends it on the listener's ICE socket, with no
   sender coroutine per listener. It keeps the sender's RTCP sender-report counters correct.
3. ICE host addresses: aioice gathers on every interface and skips 127.0.0.1; the SFU and the
   agent need a setting for which local addresses to announce (process-wide: aioice has no
   per-connection option).
4. What aiortc keeps of a negotiated transceiver: its codecs and the direction the offer asked
   for (`negotiated_codecs`, `offered_direction`), and the ICE pair it nominated (tests
   replace that pair with `select_local_address`, as a renomination would).
5. A data-channel message that must not wait behind a backlog (PTT off to a station):
   `send_ahead` puts it at the head of the SCTP transport's queue of messages not yet handed
   to SCTP; `RTCDataChannel.send()` can only append.

`check_hooks()` verifies every attribute used here still exists (the SFU and the agent call it
at start); `tests/radiocore/test_aiortc_hooks.py` calls it and fails loudly when an aiortc
upgrade moves them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc import (
    RTCDataChannel,
    RTCIceTransport,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSctpTransport,
)
from aiortc import rtcsctptransport as sctp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

logger = logging.getLogger(__name__)

RtpHandler = Callable[[RtpPacket, int], Awaitable[None]]

_RECEIVER_HANDLER = "_handle_rtp_packet"
_RECEIVER_JITTER = "_RTCRtpReceiver__jitter_buffer"
_SENDER_STARTED = "_RTCRtpSender__started"
_SENDER_MID = "_RTCRtpSender__mid"
_SENDER_EXTENSIONS = "_RTCRtpSender__rtp_header_extensions_map"
_SENDER_COUNTERS = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)
_DTLS_COUNTERS = ("_RTCDtlsTransport__tx_bytes", "_RTCDtlsTransport__tx_packets")


class HookError(RuntimeError):
    """aiortc/aioice internals these hooks rely on are not what they were."""


class NullJitterBuffer:
    """Stands in for the receiver's jitter buffer: forwarded packets are never decoded."""

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        return False, None


def tap_receiver(receiver: RTCRtpReceiver, on_packet: Callable[[RtpPacket], None]) -> None:
    """Call `on_packet` for every RTP packet the receiver gets, before anything else.

    The packet object is shared: `on_packet` must not modify it.
    """
    original: RtpHandler = getattr(receiver, _RECEIVER_HANDLER)

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        on_packet(packet)
        await original(packet, arrival_time_ms)

    setattr(receiver, _RECEIVER_HANDLER, handle_rtp_packet)
    setattr(receiver, _RECEIVER_JITTER, NullJitterBuffer())


@dataclass(frozen=True)
class SenderWiring:
    """What the direct path needs of a started sender: header fields and its transports."""

    ssrc: int
    payload_type: int
    header_tail: bytes  # SSRC + header extensions, as the sender would write them
    has_extension: bool
    dtls: RTCDtlsTransport


def sender_wiring(transceiver: RTCRtpTransceiver) -> SenderWiring | None:
    """The sender's wiring once it is started and its DTLS transport connected, else None."""
    sender: RTCRtpSender = transceiver.sender
    dtls: RTCDtlsTransport = sender.transport
    if not getattr(sender, _SENDER_STARTED) or dtls._state != DtlsState.CONNECTED:
        return None
    codecs = negotiated_codecs(transceiver)
    if not codecs:
        return None
    extensions_map: HeaderExtensionsMap = getattr(sender, _SENDER_EXTENSIONS)
    template = RtpPacket(payload_type=codecs[0].payloadType, sequence_number=0, timestamp=0)
    template.ssrc = sender._ssrc
    template.extensions.mid = getattr(sender, _SENDER_MID)
    header = template.serialize(extensions_map)
    return SenderWiring(
        ssrc=sender._ssrc,
        payload_type=codecs[0].payloadType,
        header_tail=header[8:],
        has_extension=bool(header[0] & 0x10),
        dtls=dtls,
    )


def srtp_protect(dtls: RTCDtlsTransport) -> Callable[[bytes], bytes]:
    """The bound SRTP `protect` of a connected DTLS transport."""
    protect: Callable[[bytes], bytes] = dtls._tx_srtp.protect
    return protect


def nominated_pair(dtls: RTCDtlsTransport) -> Any | None:
    """aioice's nominated candidate pair for RTP (component 1), or None."""
    return nominated_pairs(dtls).get(1)


def nominated_pairs(dtls: RTCDtlsTransport) -> Mapping[int, Any]:
    """aioice's live map of nominated candidate pairs by component (1: RTP); it changes in
    place when ICE nominates another pair."""
    pairs: Mapping[int, Any] = _ice_connection(dtls)._nominated
    return pairs


def select_local_address(dtls: RTCDtlsTransport, host: str) -> Any:
    """Tests only: send RTP from the local candidate on `host` to the current remote candidate,
    as when the controlling peer nominates another pair (aioice's `set_selected_pair` replaces
    the nominated entry the same way); returns the new nominated pair."""
    connection = _ice_connection(dtls)
    remote = connection._nominated[1].remote_candidate
    local = next(c for c in connection.local_candidates if c.component == 1 and c.host == host)
    connection.set_selected_pair(1, local.foundation, remote.foundation)
    return connection._nominated[1]


def _ice_connection(dtls: RTCDtlsTransport) -> aioice.ice.Connection:
    connection: aioice.ice.Connection = dtls.transport._connection
    return connection


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> Sequence[Any]:
    """The transceiver's codecs (`RTCRtpCodecParameters`) once the remote offer is applied."""
    codecs: Sequence[Any] = transceiver._codecs
    return codecs


def offered_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the remote offer leaves to this side: "recvonly" means the client sends
    and we only receive, "sendrecv" both ways; None before an offer was applied."""
    direction: str | None = transceiver._offerDirection
    return direction


def pair_is_plain_udp(pair: Any) -> bool:
    """True when the pair sends with a plain UDP socket (not through a TURN relay)."""
    return type(pair.protocol) is aioice.ice.StunProtocol


def add_sent(sender: Any, ntp_timestamp: int, rtp_timestamp: int, octets: int) -> None:
    """Account one forwarded packet in the sender's RTCP sender-report counters."""
    sender._RTCRtpSender__ntp_timestamp = ntp_timestamp
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp
    sender._RTCRtpSender__octet_count += octets
    sender._RTCRtpSender__packet_count += 1


def add_transport_sent(dtls: Any, size: int) -> None:
    dtls._RTCDtlsTransport__tx_bytes += size
    dtls._RTCDtlsTransport__tx_packets += 1


def send_ahead(channel: RTCDataChannel, text: str, behind: str) -> None:
    """Send a text message on an open data channel ahead of the messages still waiting to be
    handed to SCTP, though never ahead of a waiting message equal to `behind` (nor of the
    channel-establishment messages). Counted in `bufferedAmount` as `send()` counts it.

    Ordered delivery holds: SCTP numbers a message when it takes it from this queue.
    """
    transport: RTCSctpTransport = channel.transport
    waiting = transport._data_channel_queue
    held = behind.encode()
    position = 0
    for index, (queued, protocol, user_data) in enumerate(waiting):
        if protocol == sctp.WEBRTC_DCEP or (queued is channel and user_data == held):
            position = index + 1
    data = text.encode()
    channel._addBufferedAmount(len(data))
    waiting.insert(position, (channel, sctp.WEBRTC_STRING, data))
    flush = asyncio.ensure_future(transport._data_channel_flush())
    _FLUSHES.add(flush)  # the loop keeps only a weak reference to a task
    flush.add_done_callback(_FLUSHES.discard)


_FLUSHES: set[asyncio.Future[None]] = set()


def set_host_addresses(addresses: Sequence[str]) -> None:
    """Gather ICE host candidates only on `addresses` (process-wide); empty: aioice default.

    aioice reads `aioice.ice.get_host_addresses` at gathering time; it has no option for it.
    """
    wanted = tuple(addresses)
    if not wanted:
        aioice.ice.get_host_addresses = _AIOICE_GET_HOST_ADDRESSES
        return

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in wanted if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
    logger.info("ICE host addresses limited to %s", ", ".join(wanted))


_AIOICE_GET_HOST_ADDRESSES = aioice.ice.get_host_addresses


def check_hooks() -> None:
    """Raise `HookError` naming what is missing if aiortc/aioice no longer fit these hooks."""
    missing: list[str] = []
    if not hasattr(RTCRtpReceiver, _RECEIVER_HANDLER):
        missing.append(f"RTCRtpReceiver.{_RECEIVER_HANDLER}")
    receiver_init = inspect.getsource(RTCRtpReceiver.__init__)
    if "self.__jitter_buffer" not in receiver_init:
        missing.append("RTCRtpReceiver.__jitter_buffer")
    sender_init = inspect.getsource(RTCRtpSender.__init__)
    for name in (_SENDER_STARTED, _SENDER_MID, _SENDER_EXTENSIONS, *_SENDER_COUNTERS):
        if "self.__" + name.split("__", 1)[1] not in sender_init:
            missing.append(f"RTCRtpSender.{name}")
    transceiver_init = inspect.getsource(RTCRtpTransceiver.__init__)
    for attr in ("self._codecs", "self._offerDirection"):
        if attr not in transceiver_init:
            missing.append(f"RTCRtpTransceiver.{attr.removeprefix('self.')}")
    dtls_init = inspect.getsource(RTCDtlsTransport.__init__)
    for name in ("_tx_srtp", "_state", *_DTLS_COUNTERS):
        attr = "self." + (name if not name.startswith("_RTC") else "__" + name.split("__", 1)[1])
        if attr not in dtls_init:
            missing.append(f"RTCDtlsTransport.{name}")
    if "self._connection" not in inspect.getsource(RTCIceTransport.__init__):
        missing.append("RTCIceTransport._connection")
    sctp_init = inspect.getsource(RTCSctpTransport.__init__)
    if "self._data_channel_queue" not in sctp_init:
        missing.append("RTCSctpTransport._data_channel_queue")
    for owner, name in (
        (RTCSctpTransport, "_data_channel_flush"),
        (RTCDataChannel, "_addBufferedAmount"),
        (sctp, "WEBRTC_DCEP"),
        (sctp, "WEBRTC_STRING"),
    ):
        if not hasattr(owner, name):
            missing.append(f"{owner.__name__}.{name}")
    ice_source = inspect.getsource(aioice.ice.Connection)
    for needle in ("self._nominated", "get_host_addresses("):
        if needle not in ice_source:
            missing.append(f"aioice.ice.Connection uses {needle}")
    if not hasattr(aioice.ice, "get_host_addresses"):
        missing.append("aioice.ice.get_host_addresses")
    if not hasattr(aioice.ice.Connection, "set_selected_pair"):
        missing.append("aioice.ice.Connection.set_selected_pair")
    if not hasattr(aioice.ice.StunProtocol, "send_data"):
        missing.append("aioice.ice.StunProtocol.send_data")
    if missing:
        raise HookError("aiortc/aioice internals changed; missing: " + ", ".join(missing))

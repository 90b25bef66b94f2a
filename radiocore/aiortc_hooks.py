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
   the idle decoder never sees a frame and nothing piles up. A receiver that never receives
   (a listener's) gives up the decoder queue aiortc made for it (`release_idle_decoder_queue`).
2. Send side ("direct path"): the forwarder's lane (media/lane.py, media/_lane.c) writes each
   listener's RTP header itself, protects it with that listener's SRTP session (`srtp_session`,
   and `srtp_addresses` for the compiled lane: pylibsrtp's libsrtp context and `srtp_protect`)
   and sends it on the listener's ICE socket (`pair_socket`), with no sender coroutine per
   listener. The sender's RTCP reports go every ~5 s (`report_every`, libwebrtc's audio
   interval) and take the lane's counts just before (`set_sent`), so they stay correct. The
   listeners' receiver reports are dropped on arrival, undecrypted (`skip_receiver_reports`):
   nothing reads them. The one
   touch outside this module: the compiled lane's `sync` sets the same sender counters and
   DTLS transport counts by name (`_SENDER_COUNTERS`, `_DTLS_COUNTERS`, checked here).
3. ICE host addresses: aioice gathers on every interface and skips 127.0.0.1; the SFU and the
   agent need a setting for which local addresses to announce (process-wide: aioice has no
   per-connection option).
4. What aiortc keeps of a negotiated transceiver: its codecs and the direction the offer asked
   for (`negotiated_codecs`, `offered_direction`), and the ICE pair it nominated (tests
   replace that pair with `select_local_address`, as a renomination would).
5. A data-channel message that must not wait behind a backlog (PTT off to a station):
   `send_ahead` puts it at the head of the SCTP transport's queue of messages not yet handed
   to SCTP; `RTCDataChannel.send()` can only append.
6. Host candidates of the SFU's connections in a UDP port range, or all on one shared port
   (`radiocore.udp_mux`, which uses aioice's public names only), and with an announced address
   (1:1 NAT): `set_host_candidate_policy` and a wrapper of aioice's candidate gathering.
7. DTLS (process-wide, `setup_dtls`): cipher suites for peers with RSA certificates beside
   aiortc's ECDSA ones, the reason a handshake failed kept per transport (`dtls_failure`), one
   OpenSSL context per certificate whose connections release their record buffers between
   records, its fingerprints computed once; the server's peer connections share one
   certificate (`server_peer_connection`).

`check_hooks()` verifies every attribute used here still exists (the SFU and the agent call it
at start); `tests/radiocore/test_aiortc_hooks.py` calls it and fails loudly when an aiortc
upgrade moves them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import random
import socket
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aioice.candidate
import aioice.ice
import aioice.turn
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSctpTransport,
)
from aiortc import rtcsctptransport as sctp
from aiortc.rtcdtlstransport import SSL as OPENSSL  # type: ignore[attr-defined]  # as aiortc has it
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
)

from radiocore import udp_mux

logger = logging.getLogger(__name__)

RtpHandler = Callable[[RtpPacket, int], Awaitable[None]]

_RECEIVER_HANDLER = "_handle_rtp_packet"
_RECEIVER_JITTER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RECEIVER_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
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


#: RTCP packet type of a receiver report (RFC 3550): a compound that starts with one carries
#: no sender report, only report blocks on what its sender received (and SDES, maybe a BYE).
RTCP_RECEIVER_REPORT = 201


def skip_receiver_reports(dtls: RTCDtlsTransport) -> None:
    """Drop the compound RTCP packets that start with a receiver report when they arrive on
    `dtls`'s ICE connection, before decryption: a forwarding server reads nothing in them
    (its lanes count what they sent; a console measures its own link), and aiortc would decrypt,
    parse and route each one through a queue and a task, per listener, about once a second.
    Sender reports (a client that sends audio), DTLS and STUN pass as before. Only with RTCP
    multiplexed on the RTP port (BUNDLE), where RTP payload types 64-95 are not used
    (RFC 5761), so a datagram whose second byte is 201 is RTCP."""
    connection = _ice_connection(dtls)
    passed_on = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        if len(data) > 1 and data[1] == RTCP_RECEIVER_REPORT and data[0] & 0xC0 == 0x80:
            return
        passed_on(data, component)

    connection.data_received = data_received  # type: ignore[method-assign]


def release_idle_decoder_queue(receiver: RTCRtpReceiver) -> None:
    """Free the decoder queue of a receiver that does not receive (a listener's, whose
    transceiver the server only sends on): aiortc makes a `queue.Queue` (three threading
    conditions, ≈ 4 KB) for a decoder thread it starts only in `receive()`, and every
    receiver keeps it. If `receive()` is ever called, a queue is made again first."""
    if getattr(receiver, _RECEIVER_DECODER_THREAD) is not None:
        return  # receiving: its thread holds the queue
    setattr(receiver, _RECEIVER_DECODER_QUEUE, None)
    original = receiver.receive

    async def receive(parameters: Any) -> None:
        setattr(receiver, _RECEIVER_DECODER_QUEUE, queue.Queue())
        del receiver.receive  # the class's method again
        await original(parameters)

    receiver.receive = receive  # type: ignore[method-assign]


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
    return type(pair.protocol) in _PLAIN_UDP_PROTOCOLS


_PLAIN_UDP_PROTOCOLS = (aioice.ice.StunProtocol, udp_mux.MuxedStunProtocol)


def pair_socket(pair: Any) -> tuple[socket.socket, int, str, int, int] | None:
    """A plain-UDP pair's socket and its remote address as (socket, family, host, port,
    scope id), for a lane to send on directly; None when the pair's transport has none."""
    transport = pair.protocol.transport
    sock = getattr(transport, "_sock", None) if transport is not None else None
    if not isinstance(sock, socket.socket):
        return None
    host, port = pair.remote_addr[0], pair.remote_addr[1]
    scope_id = 0
    if sock.family == socket.AF_INET6 and "%" in host:
        host, _, scope = host.partition("%")
        scope_id = int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
    return sock, sock.family, host, port, scope_id


def srtp_addresses(session: Any) -> tuple[int, int]:
    """A pylibsrtp `Session`'s libsrtp context and that library's `srtp_protect`, as addresses
    for the compiled lane (media/_lane.c), which calls the same copy of libsrtp."""
    from pylibsrtp._binding import ffi, lib

    context = int(ffi.cast("uintptr_t", session._srtp[0]))
    protect = int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect")))
    return context, protect


def _missing_send_side_hooks() -> list[str]:
    """What the send side needs of aiortc, aioice, pylibsrtp and asyncio: the sender's report
    loop (`report_every`), the peer connection's certificate (`server_peer_connection`),
    pylibsrtp's session and `srtp_protect` (`srtp_addresses`), asyncio's socket (`pair_socket`)
    and where aioice hands on what is not STUN (`skip_receiver_reports`)."""
    import asyncio.selector_events

    import pylibsrtp
    from pylibsrtp._binding import ffi, lib

    missing: list[str] = []
    run_rtcp = inspect.getsource(RTCRtpSender._run_rtcp)
    for needle in (
        "self.__rtcp_started.set()",
        "await asyncio.sleep(0.5 + random.random())",
        "self.__lsr = ((self.__ntp_timestamp) >> 16) & 0xFFFFFFFF",
        "self.__lsr_time = time.time()",
        "RtcpByePacket(sources=[self._ssrc])",
        "self.__rtcp_exited.set()",
    ):
        if needle not in run_rtcp:
            missing.append(f"RTCRtpSender._run_rtcp: {needle}")
    if "asyncio.ensure_future(self._run_rtcp())" not in inspect.getsource(RTCRtpSender.send):
        missing.append("RTCRtpSender.send starts self._run_rtcp()")
    if "RTCCertificate.generateCertificate()" not in inspect.getsource(RTCPeerConnection.__init__):
        missing.append("RTCPeerConnection.__init__ makes its certificate")
    if "self._srtp = " not in inspect.getsource(pylibsrtp.Session.__init__):
        missing.append("pylibsrtp.Session._srtp")
    if str(ffi.typeof(lib.srtp_protect)) != (
        "<ctype 'srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)'>"
    ):
        missing.append("pylibsrtp's srtp_protect(srtp_t, void *, int *)")
    transport_class = asyncio.selector_events._SelectorTransport  # type: ignore[attr-defined]
    if "self._sock = sock" not in inspect.getsource(transport_class):
        missing.append("asyncio's _SelectorTransport._sock")
    datagram_received = inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    if "self.receiver.data_received(data, self.local_candidate.component)" not in (
        datagram_received
    ):
        missing.append("aioice's StunProtocol hands non-STUN datagrams to receiver.data_received")
    return missing


def srtp_session(dtls: RTCDtlsTransport) -> Any:
    """The pylibsrtp `Session` a connected DTLS transport protects outgoing RTP with."""
    return dtls._tx_srtp


#: Mean seconds between a forwarding sender's RTCP sender reports: libwebrtc's for audio
#: (aiortc sends one every 0.5-1.5 s, five times as often, each a timer, an SRTCP protect and
#: a send per listener).
FORWARDED_REPORT_INTERVAL_S = 5.0


def report_every(
    sender: RTCRtpSender, interval_s: float, before_report: Callable[[], None] | None = None
) -> None:
    """The sender's RTCP sender reports every `interval_s` on average (randomized over 0.5-1.5
    times it, RFC 3550 6.3.1) instead of aiortc's 1 s; the same reports (SR with the last packet's
    NTP/RTP time pair and the counts, SDES CNAME; BYE at the end, then the exit `stop()` waits
    for). `before_report` brings the counts up to date first (a forwarding lane's `sync`).
    Before the sender starts."""

    s: Any = sender  # aiortc's private (name-mangled) state, as `set_sent` uses it

    async def run_rtcp() -> None:
        s._RTCRtpSender__rtcp_started.set()
        try:
            while True:
                await asyncio.sleep(interval_s * (0.5 + random.random()))
                if before_report is not None:
                    before_report()
                ntp: int = s._RTCRtpSender__ntp_timestamp
                packets: list[Any] = [
                    RtcpSrPacket(
                        ssrc=s._ssrc,
                        sender_info=RtcpSenderInfo(
                            ntp_timestamp=ntp,
                            rtp_timestamp=s._RTCRtpSender__rtp_timestamp,
                            packet_count=s._RTCRtpSender__packet_count & 0xFFFFFFFF,
                            octet_count=s._RTCRtpSender__octet_count & 0xFFFFFFFF,
                        ),
                    )
                ]
                s._RTCRtpSender__lsr = (ntp >> 16) & 0xFFFFFFFF
                s._RTCRtpSender__lsr_time = time.time()
                cname: str | None = s._RTCRtpSender__cname
                if cname is not None:
                    packets.append(
                        RtcpSdesPacket(
                            chunks=[RtcpSourceInfo(ssrc=s._ssrc, items=[(1, cname.encode())])]
                        )
                    )
                await s._send_rtcp(packets)
        except asyncio.CancelledError:
            pass
        await s._send_rtcp([RtcpByePacket(sources=[s._ssrc])])
        s._RTCRtpSender__rtcp_exited.set()  # `stop()` waits for it

    s._run_rtcp = run_rtcp


def sent_counts(sender: Any, dtls: Any) -> tuple[int, int, int, int]:
    """The sender's RTCP packet and octet counts and the DTLS transport's sent packets and
    bytes, as `set_sent` and `set_transport_sent` set them."""
    return (
        sender._RTCRtpSender__packet_count,
        sender._RTCRtpSender__octet_count,
        dtls._RTCDtlsTransport__tx_packets,
        dtls._RTCDtlsTransport__tx_bytes,
    )


def set_sent(
    sender: Any, ntp_timestamp: int | None, rtp_timestamp: int, packets: int, octets: int
) -> None:
    """Set the sender's RTCP sender-report counters (and, unless None, the last packet's NTP
    and RTP time pair) to a forwarding lane's."""
    if ntp_timestamp is not None:
        sender._RTCRtpSender__ntp_timestamp = ntp_timestamp
        sender._RTCRtpSender__rtp_timestamp = rtp_timestamp
    sender._RTCRtpSender__octet_count = octets
    sender._RTCRtpSender__packet_count = packets


def set_transport_sent(dtls: Any, packets: int, size: int) -> None:
    """Set the DTLS transport's sent counts (its `getStats`) to a forwarding lane's."""
    dtls._RTCDtlsTransport__tx_packets = packets
    dtls._RTCDtlsTransport__tx_bytes = size


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


def host_addresses() -> list[str]:
    """The addresses ICE gathers host candidates on now (`set_host_addresses`, else every
    interface's, as aioice finds them)."""
    return list(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))


def check_hooks() -> None:
    """Raise `HookError` naming what is missing if aiortc/aioice no longer fit these hooks."""
    missing: list[str] = []
    if not hasattr(RTCRtpReceiver, _RECEIVER_HANDLER):
        missing.append(f"RTCRtpReceiver.{_RECEIVER_HANDLER}")
    receiver_init = inspect.getsource(RTCRtpReceiver.__init__)
    if "self.__jitter_buffer" not in receiver_init:
        missing.append("RTCRtpReceiver.__jitter_buffer")
    receiver_receive = inspect.getsource(RTCRtpReceiver.receive)
    for name in (_RECEIVER_DECODER_QUEUE, _RECEIVER_DECODER_THREAD):
        attr = "self.__" + name.split("__", 1)[1]
        if attr not in receiver_init or attr not in receiver_receive:
            missing.append(f"RTCRtpReceiver.{name}")
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
    gather = inspect.getsource(_AIOICE_GET_COMPONENT_CANDIDATES)
    for needle in (
        "local_addr=(address, 0)",
        "self._protocols += host_protocols",
        "server_reflexive_candidate(protocol, self.stun_server)",
        "relayed_candidate(",
    ):
        if needle not in gather:
            missing.append(f"aioice.ice.Connection.get_component_candidates uses {needle}")
    if not hasattr(aioice.turn, "UDP_SOCKET_BUFFER_SIZE"):
        missing.append("aioice.turn.UDP_SOCKET_BUFFER_SIZE")
    missing += _missing_dtls_hooks()
    missing += _missing_send_side_hooks()
    if missing:
        raise HookError("aiortc/aioice internals changed; missing: " + ", ".join(missing))


# ---------------------------------------------------------------------------------------------
# 6. Host candidates of the SFU's own connections: a UDP port range and an announced address.
#
# aioice binds each host candidate to port 0 on its address and announces the address it bound;
# it has no option for either. A server behind a firewall needs its media ports in a known
# range, and a server behind 1:1 NAT (most clouds) must announce its public address, not the
# private one it binds. The policy is per connection (`set_host_candidate_policy(pc, …)`,
# before the answer is made), so that other peers in the same process (the tests' clients)
# keep aioice's own behaviour.


@dataclass(frozen=True)
class HostCandidatePolicy:
    """Where the host candidates of one connection bind, and what they announce."""

    #: Inclusive UDP port range to bind in; (0, 0): any port (the system's choice).
    port_range: tuple[int, int] = (0, 0)
    #: The address announced in place of every bound IPv4 host address ("": the bound one).
    announced_ipv4: str = ""
    #: One UDP port every connection shares (`radiocore.udp_mux`); 0: a socket per connection
    #: (in `port_range`).
    shared_port: int = 0

    @property
    def is_default(self) -> bool:
        return self.port_range == (0, 0) and not self.announced_ipv4 and not self.shared_port


class NoFreePortError(OSError):
    """Every port of the media range is in use on that address."""


def bind_in_range(address: str, low: int, high: int) -> Any:
    """A UDP socket bound to `address` on a free port of `low … high` (tried from a random
    start, each port at most once); `NoFreePortError` when all are taken."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    count = high - low + 1
    start = random.randrange(count)
    for step in range(count):
        port = low + (start + step) % count
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        return sock
    raise NoFreePortError(f"no free UDP port in {low}-{high} on {address}")


def set_host_candidate_policy(pc: Any, policy: HostCandidatePolicy) -> None:
    """Make `pc`'s ICE gather its host candidates as `policy` says; call after the remote
    description is applied (its transports exist) and before the answer is made (gathering)."""
    if policy.is_default:
        return
    for connection in _ice_connections(pc):
        setattr(connection, _HOST_POLICY_ATTR, policy)


def _ice_connections(pc: Any) -> list[aioice.ice.Connection]:
    transports: list[RTCIceTransport] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is not None:
            transports.append(dtls.transport)
    if pc.sctp is not None:
        transports.append(pc.sctp.transport.transport)
    seen: dict[int, aioice.ice.Connection] = {}
    for ice in transports:
        connection: aioice.ice.Connection = ice._connection
        seen[id(connection)] = connection
    return list(seen.values())


async def _get_component_candidates(
    self: aioice.ice.Connection,
    component: int,
    addresses: list[str],
    timeout: int = 5,  # noqa: ASYNC109 (aioice's signature)
) -> list[aioice.candidate.Candidate]:
    """aioice's `Connection.get_component_candidates`, with the host part under the
    connection's `HostCandidatePolicy` (if it has one); STUN and TURN as aioice does them."""
    policy: HostCandidatePolicy | None = getattr(self, _HOST_POLICY_ATTR, None)
    if policy is None or not addresses:
        return await _AIOICE_GET_COMPONENT_CANDIDATES(self, component, addresses, timeout)
    loop = asyncio.get_running_loop()
    candidates: list[aioice.candidate.Candidate] = []
    host_protocols: list[aioice.ice.StunProtocol] = []
    low, high = policy.port_range
    for address in addresses:
        if policy.shared_port:
            try:
                mux = await udp_mux.mux_for(address, policy.shared_port)
                shared = mux.attach(self)
            except OSError as exc:
                logger.warning("ICE: no host candidate on %s: %s", address, exc)
                continue
            host_protocols.append(shared)
            candidates.append(_host_candidate(shared, component, address, policy))
            continue
        try:
            if low:
                sock = bind_in_range(address, low, high)
            else:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.bind((address, 0))
                sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(self), sock=sock
            )
        except OSError as exc:
            logger.warning("ICE: could not bind a host candidate on %s: %s", address, exc)
            continue
        host_protocols.append(protocol)
        candidates.append(_host_candidate(protocol, component, address, policy))
    self._protocols += host_protocols
    # server-reflexive candidates from these sockets (not needed with an announced address:
    # that is the public one), then the relay exactly as aioice gathers it
    reflexive = []
    if self.stun_server and not policy.announced_ipv4:
        reflexive = [
            asyncio.ensure_future(aioice.ice.server_reflexive_candidate(p, self.stun_server))
            for p in host_protocols
            if ":" not in p.local_candidate.host
        ]
    relayed = asyncio.ensure_future(_AIOICE_GET_COMPONENT_CANDIDATES(self, component, [], timeout))
    if reflexive:
        done, pending = await asyncio.wait(reflexive, timeout=timeout)
        for task in pending:
            task.cancel()
        candidates += [t.result()[0] for t in done if t.exception() is None]
    candidates += await relayed
    return candidates


def _host_candidate(
    protocol: aioice.ice.StunProtocol, component: int, address: str, policy: HostCandidatePolicy
) -> aioice.candidate.Candidate:
    """The host candidate of `protocol`'s socket (bound to `address`), as `policy` announces it;
    set as the protocol's `local_candidate`."""
    bound_host, bound_port = protocol.transport.get_extra_info("sockname")[:2]
    host = policy.announced_ipv4 if policy.announced_ipv4 and ":" not in address else bound_host
    candidate = aioice.candidate.Candidate(
        foundation=aioice.candidate.candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=aioice.candidate.candidate_priority(component, "host"),
        host=host,
        port=bound_port,
        type="host",
    )
    protocol.local_candidate = candidate
    return candidate


_HOST_POLICY_ATTR = "_radiocore_host_policy"
_AIOICE_GET_COMPONENT_CANDIDATES = aioice.ice.Connection.get_component_candidates
aioice.ice.Connection.get_component_candidates = _get_component_candidates  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# 7. DTLS: peers with RSA certificates, and why a handshake failed.
#
# As the DTLS client (it answers `a=setup:active`) aiortc offers only ECDHE-ECDSA cipher suites,
# so a server with an RSA certificate (GStreamer's webrtcbin, RSA-2048) finds no shared cipher.
# The suite only says how the *server's* certificate signs: adding the ECDHE-RSA AEAD suites lets
# aiortc reach RSA peers and changes nothing when aiortc is the server (its key is ECDSA).
# aiortc logs the reason a handshake failed only at DEBUG and keeps none: the wrapped handshake
# keeps it per transport (`dtls_failure`), so the client can be told.

#: aiortc's own suites (ECDSA), then the ECDHE-RSA AEAD suites for peers with RSA certificates.
DTLS_CIPHERS: tuple[str, ...] = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
)

_AIORTC_SSL_CONTEXT = RTCCertificate._create_ssl_context
_AIORTC_DO_HANDSHAKE = RTCDtlsTransport._do_handshake
_DTLS_ERRORS: weakref.WeakKeyDictionary[RTCDtlsTransport, str] = weakref.WeakKeyDictionary()


def setup_dtls(*, accept_rsa_certificates: bool = True) -> None:
    """Process-wide: DTLS offers `DTLS_CIPHERS` (False: aiortc's ECDSA-only list, as before),
    and every handshake keeps the reason it failed for `dtls_failure`. A certificate's OpenSSL
    context is made once and shared by its connections (the server's peer connections share
    one certificate: `server_peer_connection`); its connections release their record buffers
    between records (`SSL_MODE_RELEASE_BUFFERS`: ≈ 15 KB less per connection that has a data
    channel, measured; a listener's audio never passes through DTLS — SRTP is keyed from it —
    only its data channel does). Idempotent."""
    cipher_list = ":".join(DTLS_CIPHERS).encode() if accept_rsa_certificates else b""

    def create_ssl_context(self: RTCCertificate, srtp_profiles: list[Any]) -> Any:
        key = (cipher_list, *(p.openssl_profile for p in srtp_profiles))
        cached = _SSL_CONTEXTS.get(self)
        if cached is not None and cached[0] == key:
            return cached[1]
        context = _AIORTC_SSL_CONTEXT(self, srtp_profiles)
        if cipher_list:
            context.set_cipher_list(cipher_list)
        context.set_mode(OPENSSL.MODE_RELEASE_BUFFERS)
        _SSL_CONTEXTS[self] = (key, context)
        return context

    setattr(RTCCertificate, "_create_ssl_context", create_ssl_context)  # noqa: B010
    _SSL_CONTEXTS.clear()
    setattr(RTCDtlsTransport, "_do_handshake", _do_handshake_keeping_errors)  # noqa: B010


# ---------------------------------------------------------------------------------------------
# 7b. One DTLS certificate for the server's peer connections.
#
# aiortc makes an ECDSA key, a certificate and an OpenSSL context for every peer connection:
# about 1.3 ms of CPU and 63 KB that live as long as the connection. A server's connections
# share one (as Janus's, mediasoup's and LiveKit's do): browsers check the fingerprint in the
# SDP, not who else it is shown to. It is replaced after `SHARED_CERTIFICATE_MAX_AGE_S` (aiortc
# makes it valid for 30 days); connections keep the one they started with.

#: Seconds a shared server certificate is handed to new peer connections.
SHARED_CERTIFICATE_MAX_AGE_S = 86_400.0

#: Each certificate's OpenSSL context, made once: (cipher list and SRTP profiles, context).
_SSL_CONTEXTS: weakref.WeakKeyDictionary[RTCCertificate, tuple[tuple[bytes, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
_AIORTC_GENERATE_CERTIFICATE = RTCCertificate.generateCertificate
_shared_certificate: tuple[RTCCertificate, float] | None = None
_sharing_certificate = False


def shared_certificate() -> RTCCertificate:
    """The process's server certificate (made, or replaced when too old, here)."""
    global _shared_certificate
    now = time.monotonic()
    if _shared_certificate is None or now - _shared_certificate[1] > SHARED_CERTIFICATE_MAX_AGE_S:
        _shared_certificate = (_AIORTC_GENERATE_CERTIFICATE(), now)
    return _shared_certificate[0]


def _generate_certificate(cls: type[RTCCertificate]) -> RTCCertificate:
    if _sharing_certificate:
        return shared_certificate()
    return _AIORTC_GENERATE_CERTIFICATE()


def server_peer_connection(configuration: RTCConfiguration) -> RTCPeerConnection:
    """A peer connection of the server's: its DTLS certificate is the shared one."""
    global _sharing_certificate
    _sharing_certificate = True
    try:
        return RTCPeerConnection(configuration)
    finally:
        _sharing_certificate = False


RTCCertificate.generateCertificate = classmethod(_generate_certificate)  # type: ignore[method-assign,assignment]

#: Each certificate's fingerprints, computed once: aiortc hashes the certificate with three
#: algorithms every time a transport's parameters are asked for (four times per connection,
#: ≈ 0.25 ms each, measured), and the shared certificate never changes.
_FINGERPRINTS: weakref.WeakKeyDictionary[RTCCertificate, tuple[Any, ...]] = (
    weakref.WeakKeyDictionary()
)
_AIORTC_GET_FINGERPRINTS = RTCCertificate.getFingerprints


def _get_fingerprints(self: RTCCertificate) -> list[Any]:
    fingerprints = _FINGERPRINTS.get(self)
    if fingerprints is None:
        fingerprints = _FINGERPRINTS[self] = tuple(_AIORTC_GET_FINGERPRINTS(self))
    return list(fingerprints)


RTCCertificate.getFingerprints = _get_fingerprints  # type: ignore[method-assign]


async def _do_handshake_keeping_errors(self: RTCDtlsTransport) -> None:
    """aiortc's handshake, with the first OpenSSL error of the handshake kept for
    `dtls_failure`. During the handshake aiortc also calls `recv()` on each datagram, which
    drives the handshake too and swallows its error (a peer's alert ends up there): both are
    watched, on this connection only, until the handshake is over."""
    connection = self._ssl
    if connection is None:  # aiortc makes it in `start()`, before the handshake
        return await _AIORTC_DO_HANDSHAKE(self)

    def keeping_errors(call: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any) -> Any:
            try:
                return call(*args)
            except (OPENSSL.WantReadError, OPENSSL.ZeroReturnError):
                raise
            except OPENSSL.Error as exc:
                text = _ssl_error_text(exc)
                if text and self not in _DTLS_ERRORS:  # the first says why
                    _DTLS_ERRORS[self] = text
                raise

        return watched

    connection.do_handshake = keeping_errors(connection.do_handshake)  # type: ignore[method-assign]
    connection.recv = keeping_errors(connection.recv)  # type: ignore[method-assign]
    try:
        await _AIORTC_DO_HANDSHAKE(self)
    finally:
        del connection.do_handshake, connection.recv


def _ssl_error_text(exc: Exception) -> str:
    """OpenSSL's reasons ("no shared cipher", "sslv3 alert handshake failure"), deduplicated;
    "" when OpenSSL gave none (its error queue was read before)."""
    entries = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    reasons: list[str] = []
    for entry in entries:
        reason = str(entry[-1]) if isinstance(entry, tuple) and entry else str(entry)
        if reason and reason not in reasons:
            reasons.append(reason)
    return "; ".join(reasons)


def dtls_failure(dtls: RTCDtlsTransport) -> str:
    """Why a DTLS transport's handshake failed, in words (once its state is "failed"): OpenSSL's
    reason ("no shared cipher", "sslv3 alert handshake failure"), or what aiortc checked after
    the handshake (the certificate's fingerprint, the SRTP profile)."""
    error = _DTLS_ERRORS.get(dtls)
    if error is not None:  # OpenSSL names an alert it received "… alert …"
        return f"the peer refused it ({error})" if "alert" in error else error
    if not dtls.encrypted:
        return "the handshake did not complete"
    selected = dtls._ssl.get_selected_srtp_profile() if dtls._ssl is not None else b""
    if selected not in {profile.openssl_profile for profile in dtls._srtp_profiles}:
        return "no SRTP protection profile in common"
    return "the peer's certificate does not match the fingerprint in its SDP"


def _missing_dtls_hooks() -> list[str]:
    missing: list[str] = []
    context_source = inspect.getsource(_AIORTC_SSL_CONTEXT)
    if "ctx.set_cipher_list(" not in context_source or "return ctx" not in context_source:
        missing.append("RTCCertificate._create_ssl_context sets the cipher list")
    handshake_source = inspect.getsource(_AIORTC_DO_HANDSHAKE)
    for needle in ("self._ssl.do_handshake()", "except SSL.Error", "State.FAILED"):
        if needle not in handshake_source:
            missing.append(f"RTCDtlsTransport._do_handshake uses {needle}")
    if "self._ssl.recv(" not in inspect.getsource(RTCDtlsTransport._recv_next):
        missing.append("RTCDtlsTransport._recv_next uses self._ssl.recv(")
    dtls_init = inspect.getsource(RTCDtlsTransport.__init__)
    for attr in ("self._ssl", "self._srtp_profiles", "self.encrypted"):
        if attr not in dtls_init:
            missing.append(f"RTCDtlsTransport.{attr.removeprefix('self.')}")
    if "self._ssl.get_selected_srtp_profile()" not in inspect.getsource(
        RTCDtlsTransport._setup_srtp
    ):
        missing.append("RTCDtlsTransport._setup_srtp checks the SRTP profile")
    return missing

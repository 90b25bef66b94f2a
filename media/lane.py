"""One listener's outbound stream on the hot path: a *lane*, compiled or pure Python.

A lane does, per forwarded packet, everything that is per listener: rewrite the sequence number
and timestamp (`RtpMunger`'s rules), build the RTP header (the listener's payload type, SSRC and
header extensions), protect it with the listener's SRTP session, hand it to the listener's UDP
socket (or return it, for a relayed pair's queue) and count what the RTCP sender reports state.
`sync()` writes those counts into the aiortc sender (and the DTLS transport's byte counts); the
forwarding sender calls it before each report (`aiortc_hooks.report_every`), not per packet.

`media/_lane.c` (built by setup.py when a C compiler and Python's headers are there) does it in
one C call; `PyLane` below is the pure-Python fallback and the reference: both pass the same
tests (tests/media/test_lane.py, and the forwarding tests run on both). `Lane` is the compiled
one when it is built; the server's `forwarding_lane` setting picks one (`lane_named`). The
compiled lanes of a source's listeners also go out together (`send_many`: one `sendmmsg` per
socket, so one per packet for all listeners on a shared port); the Python lanes one by one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from media.rtp_munger import RtpMunger
from radiocore import aiortc_hooks

#: The same limit as pylibsrtp's session buffer: 1500 bytes less SRTP's largest trailer.
_MAX_PACKET = 1500 - 144


class LaneLike(Protocol):
    """What `ForwardTarget` uses of a lane (both kinds)."""

    @property
    def packets(self) -> int: ...
    @property
    def octets(self) -> int: ...
    @property
    def late(self) -> int: ...
    @property
    def send_errors(self) -> int: ...

    def munge(self, source: int, seq: int, ts: int, ntp: int) -> tuple[int, int] | None: ...

    def wire(
        self,
        first_byte: int,
        payload_type: int,
        tail: bytes,
        session: Any,
        srtp: int,
        protect: int,
        sender: Any,
        dtls: Any,
    ) -> None: ...

    def use_socket(
        self,
        sock: socket.socket | None,
        family: int = 0,
        host: str = "",
        port: int = 0,
        scope_id: int = 0,
    ) -> None: ...

    def send(
        self, source: int, seq: int, ts: int, marker: int, payload: bytes, ntp: int
    ) -> bytes | None: ...

    def follow(self, nominated: Mapping[int, Any] | None, pair: Any) -> None: ...

    def sync(self) -> None: ...


class PyLane:
    """The pure-Python lane (see the module docstring); `media._lane.Lane` does the same."""

    def __init__(self, clock_rate: int, first_seq: int, first_ts: int) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be above 0")
        self._munger = RtpMunger(clock_rate, first_seq, first_ts)
        self._payload_type = 0
        self._first_byte = 0x80
        self._tail = b""
        self._protect: Callable[[bytes], bytes] | None = None
        self._sender: Any = None
        self._dtls: Any = None
        self._sock: socket.socket | None = None
        self._addr: tuple[Any, ...] = ()
        self.packets = 0
        self.octets = 0
        self.late = 0
        self.send_errors = 0
        self._tx_bytes = 0
        self._last_ntp = 0
        self._last_rtp_ts = 0
        # the sender's and transport's counts before this lane added to them
        self._base = (0, 0, 0, 0)

    def munge(self, source: int, seq: int, ts: int, ntp: int) -> tuple[int, int] | None:
        return self._munger.munge(source, seq, ts, ntp)

    def wire(
        self,
        first_byte: int,
        payload_type: int,
        tail: bytes,
        session: Any,
        srtp: int,
        protect: int,
        sender: Any,
        dtls: Any,
    ) -> None:
        del srtp, protect  # the compiled lane's view of `session`
        self._first_byte = first_byte
        self._payload_type = payload_type
        self._tail = bytes(tail)
        self._protect = session.protect
        self._sender = sender
        self._dtls = dtls
        packets, octets, tx_packets, tx_bytes = aiortc_hooks.sent_counts(sender, dtls)
        self._base = (
            packets - self.packets,
            octets - self.octets,
            tx_packets - self.packets,
            tx_bytes - self._tx_bytes,
        )

    def use_socket(
        self,
        sock: socket.socket | None,
        family: int = 0,
        host: str = "",
        port: int = 0,
        scope_id: int = 0,
    ) -> None:
        if sock is None:
            self._sock = None
            return
        if not 0 < port <= 65535 or family not in (socket.AF_INET, socket.AF_INET6):
            raise ValueError("use_socket needs a family, an address and a port")
        try:
            socket.inet_pton(family, host)
        except OSError:
            raise ValueError(f"not a numeric address of family {family}: {host}") from None
        self._addr = (host, port) if family == socket.AF_INET else (host, port, 0, scope_id)
        self._sock = sock

    def follow(self, nominated: Mapping[int, Any] | None, pair: Any) -> None:
        """The compiled lane's check for `send_many` (there is no batch in Python)."""
        del nominated, pair

    def send(
        self, source: int, seq: int, ts: int, marker: int, payload: bytes, ntp: int
    ) -> bytes | None:
        protect = self._protect
        if protect is None:
            raise RuntimeError("the lane is not wired")
        if not isinstance(payload, bytes):
            raise TypeError("payload must be bytes")
        if 8 + len(self._tail) + len(payload) > _MAX_PACKET:
            raise ValueError("packet is too long")
        munged = self._munger.munge(source, seq, ts, ntp)
        if munged is None:
            self.late += 1
            return None
        out_seq, out_ts = munged
        data = protect(
            bytes(
                (
                    self._first_byte,
                    self._payload_type | (0x80 if marker else 0),
                    out_seq >> 8,
                    out_seq & 0xFF,
                )
            )
            + out_ts.to_bytes(4, "big")
            + self._tail
            + payload
        )
        result: bytes | None = None
        sock = self._sock
        if sock is not None:
            if sock.fileno() < 0:  # closed: nothing to send on
                self.send_errors += 1
                return None
            try:
                sock.sendto(data, socket.MSG_DONTWAIT, self._addr)
            except OSError:
                self.send_errors += 1  # a full socket buffer loses the packet, as UDP does
        else:
            result = data
        self.packets += 1
        self.octets += len(payload)
        self._tx_bytes += len(data)
        self._last_ntp = ntp
        self._last_rtp_ts = out_ts
        return result

    def sync(self) -> None:
        if self._sender is None:
            return  # not wired: nothing sent, nothing to state
        packets, octets, tx_packets, tx_bytes = self._base
        aiortc_hooks.set_sent(
            self._sender,
            self._last_ntp if self.packets else None,
            self._last_rtp_ts,
            packets + self.packets,
            octets + self.octets,
        )
        aiortc_hooks.set_transport_sent(
            self._dtls, tx_packets + self.packets, tx_bytes + self._tx_bytes
        )


#: What makes a lane: `(clock_rate, first_seq, first_ts)` -> a lane.
LaneFactory = Callable[[int, int, int], LaneLike]


#: `send_many(lanes, source, seq, ts, marker, payload, ntp)`: `send` for each compiled lane of
#: the tuple, their packets handed to the kernel with one `sendmmsg` per run of lanes on the same
#: socket (one for all on a shared port, `ice.udp_port`); it leaves alone a lane with no socket,
#: not wired, or whose nominated pair is not the one it `follow`s, and returns their indexes
#: (None: none left) for the caller's `send`.
SendMany = Callable[[tuple[LaneLike, ...], int, int, int, int, bytes, int], list[int] | None]


def _compiled() -> tuple[LaneFactory | None, SendMany | None]:
    try:
        from media._lane import Lane as CompiledLane  # type: ignore[import-not-found]
        from media._lane import send_many as compiled_send_many
    except ImportError:
        return None, None
    lane: LaneFactory = CompiledLane
    batch: SendMany = compiled_send_many
    return lane, batch


_BUILT = _compiled()
#: The compiled lane when it is built, else None (tests run both kinds through this).
CompiledLane: LaneFactory | None = _BUILT[0]
#: The compiled lane's batched send when it is built, else None.
send_many: SendMany | None = _BUILT[1]
#: The lane forwarding uses by default: the compiled one when it is built.
Lane: LaneFactory = CompiledLane if CompiledLane is not None else PyLane


def lane_named(name: str) -> LaneFactory:
    """The lane of a `forwarding_lane` setting: auto (the compiled when built), compiled (which
    must be built: ValueError if not), python."""
    if name == "python":
        return PyLane
    if name == "compiled":
        if CompiledLane is None:
            raise ValueError("the compiled forwarding lane (media._lane) is not built")
        return CompiledLane
    if name == "auto":
        return Lane
    raise ValueError(f"no forwarding lane {name!r} (auto, compiled, python)")

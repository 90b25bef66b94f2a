"""The hot path: forward one source's Opus RTP packets to many listeners, never decoding.

`RtpFanout.forward()` runs inside the source receiver's RTP handler (after SRTP decryption).
For each listener a `ForwardTarget` rewrites the header (its own SSRC, payload type, sequence
and timestamp offsets, header extensions), protects the packet with the listener's SRTP context
and hands it straight to the listener's UDP socket: no sender coroutine, no queue, no encode.
Only a listener whose ICE pair goes through a TURN relay (aioice's relay protocols are
coroutines) gets a bounded `ListenerQueue` that drops its oldest packet when full.

Sequence numbers keep the source's gaps (a listener sees upstream loss as loss); when the source
changes (a new SSRC: the agent reconnected, another operator took the floor) each target rebases
so its own stream stays continuous in sequence and advances in timestamp by the elapsed time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.clock import current_ntp_time
from aiortc.rtp import RtpPacket

from radiocore import aiortc_hooks

logger = logging.getLogger(__name__)

_HEAD = struct.Struct("!BBHI")
_SEQ_MASK = 0xFFFF
_TS_MASK = 0xFFFFFFFF
_NTP_ONE_SECOND = 1 << 32


class ListenerQueue:
    """Bounded queue for a listener on a relayed (TURN) path; drops the oldest when full."""

    def __init__(self, pair: Any, maxlen: int) -> None:
        self._pair = pair
        self._packets: collections.deque[bytes] = collections.deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def push(self, data: bytes) -> None:
        if len(self._packets) == self._packets.maxlen:
            self.dropped += 1
        self._packets.append(data)
        self._ready.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._packets:
                    await self._pair.protocol.send_data(
                        self._packets.popleft(), self._pair.remote_addr
                    )
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception:
            logger.exception("relayed listener queue failed")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._packets.clear()


class ForwardTarget:
    """One listener's outbound stream on the direct path (see module docstring)."""

    def __init__(self, transceiver: RTCRtpTransceiver, queue_packets: int, clock_rate: int) -> None:
        self._transceiver = transceiver
        self._queue_packets = queue_packets
        self._clock_rate = clock_rate
        self._sender = transceiver.sender
        self._wiring: aiortc_hooks.SenderWiring | None = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._nominated: Mapping[int, Any] = {}
        self._pair: Any = None
        self._socket: Any = None  # asyncio DatagramTransport on the fast path
        self._remote_addr: tuple[str, int] = ("", 0)
        self._queue: ListenerQueue | None = None
        self._first_byte = 0x80
        self._payload_type = 0
        self._tail = b""
        self._generation = -1
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq = 0
        self._last_ts = 0
        self._last_ntp = 0
        self.packets_sent = 0
        self.closed = False

    @property
    def dropped(self) -> int:
        return self._queue.dropped if self._queue is not None else 0

    def _prepare(self) -> Callable[[bytes], bytes] | None:
        """Wire the direct path once the listener is connected; its SRTP protect, or None."""
        wiring = aiortc_hooks.sender_wiring(self._transceiver)
        if wiring is None:
            return None
        pair = aiortc_hooks.nominated_pair(wiring.dtls)
        if pair is None:
            return None
        self._wiring = wiring
        self._protect = aiortc_hooks.srtp_protect(wiring.dtls)
        self._nominated = aiortc_hooks.nominated_pairs(wiring.dtls)
        self._pair = pair
        self._remote_addr = pair.remote_addr
        if aiortc_hooks.pair_is_plain_udp(pair):
            self._socket = pair.protocol.transport
        else:
            self._queue = ListenerQueue(pair, self._queue_packets)
        self._first_byte = 0x90 if wiring.has_extension else 0x80
        self._payload_type = wiring.payload_type
        self._tail = wiring.header_tail
        self._last_seq = random.getrandbits(15)
        self._last_ts = random.getrandbits(32)
        return self._protect

    def send(
        self, generation: int, seq: int, ts: int, marker: int, payload: bytes, ntp: int
    ) -> None:
        """Forward one packet; a no-op until the listener's transport is connected."""
        protect = self._protect
        if protect is None:
            if self.closed:
                return
            protect = self._prepare()
            if protect is None:
                return
        if self._nominated.get(1) is not self._pair:
            self.close()
            return
        if generation != self._generation:
            self._rebase(generation, seq, ts, ntp)
        out_seq = (seq + self._seq_offset) & _SEQ_MASK
        out_ts = (ts + self._ts_offset) & _TS_MASK
        data = protect(
            _HEAD.pack(self._first_byte, self._payload_type | marker, out_seq, out_ts)
            + self._tail
            + payload
        )
        if self._socket is not None:
            self._socket.sendto(data, self._remote_addr)
        elif self._queue is not None:
            self._queue.push(data)
        self._last_seq = out_seq
        self._last_ts = out_ts
        self._last_ntp = ntp
        self.packets_sent += 1
        aiortc_hooks.add_sent(self._sender, ntp, out_ts, len(payload))
        wiring = self._wiring
        if wiring is not None:
            aiortc_hooks.add_transport_sent(wiring.dtls, len(data))

    def _rebase(self, generation: int, seq: int, ts: int, ntp: int) -> None:
        elapsed = (ntp - self._last_ntp) / _NTP_ONE_SECOND if self._last_ntp else 0.02
        advance = max(1, round(min(max(elapsed, 0.0), 3600.0) * self._clock_rate))
        self._seq_offset = (self._last_seq + 1 - seq) & _SEQ_MASK
        self._ts_offset = (self._last_ts + advance - ts) & _TS_MASK
        self._generation = generation

    def close(self) -> None:
        self.closed = True
        self._protect = None
        self._socket = None
        if self._queue is not None:
            self._queue.close()
            self._queue = None


class LatencyRecorder:
    """Server ingress -> egress time of sampled packets, per listener send, in seconds."""

    def __init__(self, every: int, capacity: int = 200_000) -> None:
        self.every = every
        self.samples: collections.deque[float] = collections.deque(maxlen=capacity)

    def clear(self) -> None:
        self.samples.clear()


class RtpFanout:
    """Forwards every packet of one source to every registered target."""

    def __init__(self, clock_rate: int = 48000, latency: LatencyRecorder | None = None) -> None:
        self.clock_rate = clock_rate
        self._targets: list[ForwardTarget] = []
        self._source_ssrc: int | None = None
        self._generation = 0
        self._latency = latency
        self.packets_in = 0

    @property
    def targets(self) -> tuple[ForwardTarget, ...]:
        return tuple(self._targets)

    def add(self, target: ForwardTarget) -> None:
        self._targets.append(target)

    def remove(self, target: ForwardTarget) -> None:
        if target in self._targets:
            self._targets.remove(target)
        target.close()

    def new_source(self) -> None:
        """The next packet starts a new stream, even if its SSRC is the same."""
        self._source_ssrc = None

    def forward(self, packet: RtpPacket) -> None:
        if packet.ssrc != self._source_ssrc:
            self._source_ssrc = packet.ssrc
            self._generation += 1
        self.packets_in += 1
        generation = self._generation
        seq = packet.sequence_number
        ts = packet.timestamp
        marker = 0x80 if packet.marker else 0
        payload = packet.payload
        ntp = current_ntp_time()
        latency = self._latency
        if latency is not None and self.packets_in % latency.every == 0:
            started = time.perf_counter()
            record = latency.samples.append
            for target in self._targets:
                target.send(generation, seq, ts, marker, payload, ntp)
                record(time.perf_counter() - started)
            return
        for target in self._targets:
            target.send(generation, seq, ts, marker, payload, ntp)

"""The hot path: forward one source's Opus RTP packets to many listeners, never decoding.

`RtpFanout.forward()` runs inside the source receiver's RTP handler (after SRTP decryption).
For each listener a `ForwardTarget`'s lane (`media.lane`: compiled, or pure Python) rewrites the
header (its own SSRC, payload type, sequence and timestamp offsets, header extensions), protects
the packet with the listener's SRTP session and hands it straight to the listener's UDP socket:
no sender coroutine, no queue, no encode. The compiled lanes of all listeners go in one C call
(`media.lane.send_many`), their datagrams handed to the kernel with one `sendmmsg` per socket —
one per packet for every listener when they share a port (`ice.udp_port`).
Only a listener whose ICE pair goes through a TURN relay (aioice's relay protocols are
coroutines) gets a bounded `ListenerQueue` that drops its oldest packet when full.

Each target's `RtpMunger` rewrites sequence numbers and timestamps: the source's gaps are kept
(a listener sees upstream loss as loss); when the source changes (a new SSRC: the agent
reconnected; `new_source()`: another operator took the floor) the listener's stream stays
continuous in sequence and advances in timestamp by the elapsed time; no sequence number is
sent twice. When ICE nominates another pair for a listener, its target follows it.
"""

from __future__ import annotations

import array
import asyncio
import collections
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.clock import current_ntp_time
from aiortc.rtp import RtpPacket

from media.lane import CompiledLane, Lane, LaneFactory, LaneLike, send_many
from radiocore import aiortc_hooks

logger = logging.getLogger(__name__)


@dataclass
class ForwardTotals:
    """What forwarding did, summed over targets (read by `GET /metrics`, never on the hot path):
    packets and RTP payload bytes sent, packets dropped by a full relay queue, packets not sent
    because they came late or twice."""

    packets: int = 0
    bytes: int = 0
    queue_full: int = 0
    late: int = 0

    def add(self, other: ForwardTotals) -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.queue_full += other.queue_full
        self.late += other.late


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
    """One listener's outbound stream (see module docstring); its per-packet work is its lane's
    (`media.lane`: compiled, or the pure-Python fallback)."""

    def __init__(
        self,
        transceiver: RTCRtpTransceiver,
        queue_packets: int,
        clock_rate: int,
        name: str,
        lane: LaneFactory | None = None,
    ) -> None:
        self._transceiver = transceiver
        self._queue_packets = queue_packets
        self._name = name
        self._sender = transceiver.sender
        # random first numbers (RFC 3550); a sequence number below 2**15 keeps SRTP's rollover
        # counter unambiguous at the start
        self._lane = (lane or Lane)(clock_rate, random.getrandbits(15), random.getrandbits(32))
        # the lane counts; the sender's reports take its counts when they go (every ~5 s)
        aiortc_hooks.report_every(
            self._sender, aiortc_hooks.FORWARDED_REPORT_INTERVAL_S, self._lane.sync
        )
        # nothing here reads the listener's receiver reports on this stream
        aiortc_hooks.skip_receiver_reports(transceiver.sender.transport)
        aiortc_hooks.release_idle_decoder_queue(transceiver.receiver)
        self._nominated: Mapping[int, Any] = {}
        self._pair: Any = None
        self._queue: ListenerQueue | None = None
        #: Packets a relay queue dropped before the one in use (ICE moved to another pair).
        self._dropped_before = 0
        self.closed = False

    @property
    def lane(self) -> LaneLike:
        return self._lane

    @property
    def batched(self) -> bool:
        """True when `RtpFanout` sends this target's packets with the others' (`send_many`)."""
        return send_many is not None and type(self._lane) is CompiledLane

    @property
    def packets_sent(self) -> int:
        return self._lane.packets

    @property
    def late(self) -> int:
        """Packets not sent because they came late or twice (`RtpMunger`)."""
        return self._lane.late

    @property
    def dropped(self) -> int:
        queued = self._queue.dropped if self._queue is not None else 0
        return self._dropped_before + queued

    @property
    def bytes_sent(self) -> int:
        """RTP payload bytes sent (the sender's RTCP octet count counts the same)."""
        return self._lane.octets

    def totals(self) -> ForwardTotals:
        return ForwardTotals(self.packets_sent, self.bytes_sent, self.dropped, self.late)

    def _prepare(self) -> bool:
        """Wire the lane once the listener is connected; True when it is."""
        wiring = aiortc_hooks.sender_wiring(self._transceiver)
        if wiring is None:
            return False
        pair = aiortc_hooks.nominated_pair(wiring.dtls)
        if pair is None:
            return False
        session = aiortc_hooks.srtp_session(wiring.dtls)
        context, protect = aiortc_hooks.srtp_addresses(session)
        self._lane.wire(
            0x90 if wiring.has_extension else 0x80,
            wiring.payload_type,
            wiring.header_tail,
            session,
            context,
            protect,
            self._sender,
            wiring.dtls,
        )
        self._nominated = aiortc_hooks.nominated_pairs(wiring.dtls)
        self._use(pair)
        return True

    def _use(self, pair: Any) -> None:
        """Send on `pair`: its socket when plain UDP, else through a bounded queue (TURN)."""
        if self._queue is not None:
            self._dropped_before += self._queue.dropped
            self._queue.close()
        self._pair = pair
        direct = aiortc_hooks.pair_socket(pair) if aiortc_hooks.pair_is_plain_udp(pair) else None
        if direct is not None:
            self._lane.use_socket(*direct)
            self._lane.follow(self._nominated, pair)
            self._queue = None
        else:
            self._lane.use_socket(None)
            self._lane.follow(None, None)
            self._queue = ListenerQueue(pair, self._queue_packets)

    def _follow(self, pair: Any) -> bool:
        """ICE nominated another pair (or none: it is closing); True when there is one to use.
        The SRTP context stays: DTLS runs above ICE."""
        if pair is None:
            return False
        logger.info("ICE pair to %s changed to %s; forwarding on it", self._name, pair)
        self._use(pair)
        return True

    def send(
        self, generation: int, seq: int, ts: int, marker: int, payload: bytes, ntp: int
    ) -> None:
        """Forward one packet; a no-op until the listener's transport is connected."""
        if self._pair is None and (self.closed or not self._prepare()):
            return
        pair = self._nominated.get(1)
        if pair is not self._pair and not self._follow(pair):
            return
        data = self._lane.send(generation, seq, ts, marker, payload, ntp)
        if data is not None and self._queue is not None:
            self._queue.push(data)

    def close(self) -> None:
        self.closed = True
        self._lane.use_socket(None)
        self._lane.follow(None, None)
        self._nominated = {}
        if self._queue is not None:
            self._dropped_before += self._queue.dropped
            self._queue.close()
            self._queue = None


class LatencyRecorder:
    """Server ingress -> egress time of sampled packets, per listener send, in seconds.

    The newest `capacity` samples are kept in one preallocated array of doubles (8 bytes each,
    allocated once: the recorder's memory does not grow with the samples, nor with listeners)."""

    def __init__(self, every: int, capacity: int = 200_000) -> None:
        self.every = every
        self.capacity = capacity
        self._ring = array.array("d", bytes(8 * capacity))
        #: Samples recorded since start (`clear()` keeps it): the newest `recorded - mark` of
        #: the held samples came after a reader's `mark` (as many as are still held).
        self.recorded = 0
        self._cleared_at = 0

    def extend(self, samples: list[float]) -> None:
        """Record `samples` (oldest first)."""
        capacity = self.capacity
        if len(samples) > capacity:  # only the newest `capacity` are kept
            self.recorded += len(samples) - capacity
            samples = samples[-capacity:]
        start = self.recorded % capacity
        first = samples[: capacity - start]
        self._ring[start : start + len(first)] = array.array("d", first)
        rest = samples[len(first) :]
        self._ring[: len(rest)] = array.array("d", rest)
        self.recorded += len(samples)

    @property
    def held(self) -> int:
        return min(self.recorded - self._cleared_at, self.capacity)

    def since(self, mark: int) -> list[float]:
        """The samples recorded after `mark` (an earlier `recorded`) that are still held,
        newest first."""
        count = min(self.recorded - mark, self.held)
        if count <= 0:
            return []
        end = self.recorded % self.capacity
        newest = self._ring[max(0, end - count) : end].tolist()
        if len(newest) < count:  # wrapped: the rest is at the end of the ring
            newest = self._ring[self.capacity - (count - len(newest)) :].tolist() + newest
        newest.reverse()
        return newest

    def samples(self) -> list[float]:
        """Every sample still held, newest first."""
        return self.since(self.recorded - self.held)

    def clear(self) -> None:
        self._cleared_at = self.recorded


class RtpFanout:
    """Forwards every packet of one source to every registered target."""

    def __init__(self, latency: LatencyRecorder | None = None) -> None:
        self._targets: list[ForwardTarget] = []
        self._source_ssrc: int | None = None
        self._generation = 0
        self._latency = latency
        self._batched: tuple[ForwardTarget, ...] = ()
        self._batch: tuple[LaneLike, ...] = ()
        self._singles: tuple[ForwardTarget, ...] = ()
        self.packets_in = 0
        #: What the targets removed so far forwarded (`totals()` adds the current ones).
        self._retired = ForwardTotals()

    @property
    def targets(self) -> tuple[ForwardTarget, ...]:
        return tuple(self._targets)

    def add(self, target: ForwardTarget) -> None:
        self._targets.append(target)
        self._regroup()

    def remove(self, target: ForwardTarget) -> None:
        if target in self._targets:
            self._targets.remove(target)
            self._regroup()
            target.close()
            self._retired.add(target.totals())
            return
        target.close()

    def _regroup(self) -> None:
        """The targets whose lanes go out together (`send_many`), and the others."""
        self._batched = tuple(t for t in self._targets if t.batched)
        self._batch = tuple(t.lane for t in self._batched)
        self._singles = tuple(t for t in self._targets if not t.batched)

    def totals(self) -> ForwardTotals:
        """What every target, current or removed, forwarded and dropped since this began."""
        totals = ForwardTotals()
        totals.add(self._retired)
        for target in self._targets:
            totals.add(target.totals())
        return totals

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
            self._forward_timed(latency, generation, seq, ts, marker, payload, ntp)
            return
        if self._batch:
            assert send_many is not None  # there is a batch only when it is built
            left = send_many(self._batch, generation, seq, ts, marker, payload, ntp)
            if left is not None:
                batched = self._batched
                for index in left:
                    batched[index].send(generation, seq, ts, marker, payload, ntp)
        for target in self._singles:
            target.send(generation, seq, ts, marker, payload, ntp)

    def _forward_timed(
        self,
        latency: LatencyRecorder,
        generation: int,
        seq: int,
        ts: int,
        marker: int,
        payload: bytes,
        ntp: int,
    ) -> None:
        """`forward`, with each target's time from here until its packet was handed to the
        socket (the batch's: when its `sendmmsg` returned) recorded."""
        started = time.perf_counter()
        samples: list[float] = []
        record = samples.append
        if self._batch:
            assert send_many is not None
            left = send_many(self._batch, generation, seq, ts, marker, payload, ntp)
            done = time.perf_counter() - started
            samples.extend([done] * (len(self._batch) - len(left or ())))
            for index in left or ():
                self._batched[index].send(generation, seq, ts, marker, payload, ntp)
                record(time.perf_counter() - started)
        for target in self._singles:
            target.send(generation, seq, ts, marker, payload, ntp)
            record(time.perf_counter() - started)
        latency.extend(samples)
